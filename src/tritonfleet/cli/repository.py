"""What validate, render and plan share: the repository flags, the host facts, and the report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tritonfleet.cli.common import path_arg
from tritonfleet.pins.engines import ENGINES


def add_repository_arguments(parser: argparse.ArgumentParser, *, engine: bool = True) -> None:
    parser.add_argument("src", type=path_arg, metavar="SRC", help="model repository")
    if engine:
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


def add_host_facts_argument(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    parser.add_argument(
        "--host-facts",
        type=path_arg,
        required=required,
        metavar="FILE",
        help="JSON from `tritonfleet facts --format json`: checks tp x pp against the host's GPUs and sizes "
        "gpu_memory_utilization for them",
    )


def load_and_validate(
    args: argparse.Namespace, engine: str, planning: bool = False
) -> tuple[list[Any], Any, Any]:
    """The models of SRC validated for ENGINE (and the host, with --host-facts), the facts, the spec.

    `planning`: the host must be one the planner can size (GPUs, no MIG), said before any model check.
    """
    from tritonfleet.pins import engine_args, versions
    from tritonfleet.repository import model, validate

    spec = engine_args.load(engine, versions.load())  # type: ignore[arg-type]
    facts = None
    if getattr(args, "host_facts", None):
        from tritonfleet.host import gpus

        facts = gpus.load_facts(args.host_facts)
        if planning:
            from tritonfleet.sizing import planner

            planner.gpu_totals(facts, str(args.host_facts))
    models = model.load_repository(args.src, args.model)
    validate.validate(models, spec, facts, str(args.host_facts or ""))
    return models, facts, spec


def models_json(models: list[Any]) -> list[dict[str, object]]:
    return [
        {
            "name": m.name,
            "version": m.version,
            "versions": list(m.versions),
            "tensor_parallel_size": m.tensor_parallel_size,
            "pipeline_parallel_size": m.pipeline_parallel_size,
            "instances": m.instances,
            "gpus": m.gpus_per_instance * m.instances,
            "engine_args": m.engine_args,
        }
        for m in models
    ]


def report(fmt: str, models: list[Any], where: Path, verb: str, spec: Any, notes: list[str]) -> None:
    from tritonfleet.cli.common import print_json

    engine = f"{spec.distribution} {spec.version}"
    if fmt == "json":
        print_json(
            {"repository": str(where), "engine": engine, "models": models_json(models), "notes": notes}
        )
        return
    from rich.markup import escape
    from rich.table import Table

    from tritonfleet.console import console

    table = Table(title=escape(f"{where}: {verb} for {engine}"))
    for column in ("model", "version", "weights", "tp x pp", "instances", "GPUs", "gpu_memory_utilization"):
        table.add_column(column)
    for model in models:
        table.add_row(
            escape(model.name),
            model.version,
            escape(str(model.engine_args["model"])),
            f"{model.tensor_parallel_size} x {model.pipeline_parallel_size}",
            str(model.instances),
            str(model.gpus_per_instance * model.instances),
            str(model.engine_args.get("gpu_memory_utilization", "vLLM default")),
        )
    out = console()
    out.print(table)
    for note in notes:
        out.print(f"note: {escape(note)}")
