"""The package's import graph: layers point one way, and no module imports itself back through others.

Lower layers know nothing of higher ones: the CLI calls the library, never the reverse, and the
backend (which runs inside tritonserver) needs only the serving contract.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from helpers import ROOT

PACKAGE = ROOT / "src" / "tritonfleet"
# Top-level module or subpackage -> layer. A module may import its own part or lower layers only.
LAYERS = {
    "__init__": 0,  # __version__ only
    "errors": 0,
    "units": 0,
    "limits": 1,  # in GiB
    "console": 0,
    "files": 1,
    "pins": 2,
    "serving": 3,
    "host": 3,
    "testmodel": 3,
    "repository": 4,
    "backend": 4,
    "sizing": 5,
    "gates": 5,
    "perf": 5,  # the performance gate: load generators' results, SLOs, baselines
    "rollout": 6,  # the rollout's decisions: placement, releases, reports (ansible/plugins call it)
    "cli": 7,
    "__main__": 8,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    """Every tritonfleet module and the tritonfleet modules it imports, at any depth of the file."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        if "suite" in path.relative_to(PACKAGE).parts:
            continue  # the smoke suite, shipped as data: a client of the package, not part of it
        name = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "tritonfleet":
                    graph[name] |= {f"tritonfleet.{a.name}" for a in node.names}
                elif node.module.startswith("tritonfleet."):
                    # A name may be a submodule (`from tritonfleet.sizing import planner`); _resolve trims
                    # names that are not modules back to the module that holds them.
                    graph[name] |= {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names if a.name.startswith("tritonfleet.")}
        graph.setdefault(name, set())
    return graph


def _resolved() -> dict[str, set[str]]:
    graph = _imports()
    known = set(graph)

    def resolve(target: str) -> str:
        while target not in known and "." in target:
            target = target.rpartition(".")[0]
        return target

    return {m: {resolve(t) for t in targets} - {m} for m, targets in graph.items()}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_part_of_the_package_has_a_layer():
    parts = {_part(m) for m in _imports()}
    assert parts - set(LAYERS) == set()


def test_no_import_goes_up_a_layer():
    offenders = []
    for module, imported in _resolved().items():
        for target in imported:
            source_part, target_part = _part(module), _part(target)
            if source_part != target_part and LAYERS[target_part] >= LAYERS[source_part]:
                offenders.append(f"{module} -> {target}")
    assert offenders == []


def test_the_import_graph_has_no_cycle():
    edges = _resolved()
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_graph_sees_the_imports_inside_functions():
    # The CLI imports library code when a command runs: the graph must still see those edges.
    assert "tritonfleet.sizing.planner" in _resolved()["tritonfleet.cli.plan"]
