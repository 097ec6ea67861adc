"""`tritonfleet plan`: gpu_memory_utilization per model for one host's GPUs and co-tenants."""

from __future__ import annotations

import argparse
from typing import Any

from tritonfleet.cli.common import add_planning_arguments
from tritonfleet.cli.repository import add_host_facts_argument, add_repository_arguments

DESCRIPTION = (
    "Sizes every model of a repository (each needs hf-config.json beside its config.pbtxt) for one host: "
    "KV cache for its target with a safety margin, co-tenants on shared GPUs, start order and surplus. A "
    "plan that cannot fit fails with the cheapest fixes. `render --host-facts` with the same flags writes "
    "exactly this plan."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    add_repository_arguments(parser, engine=False)
    add_host_facts_argument(parser, required=True)
    add_planning_arguments(parser)


def validate(args: argparse.Namespace) -> None:
    from tritonfleet.cli.common import planning_targets

    planning_targets(args)  # malformed MODEL=N flags are named before any file is read


def plan_for_args(args: argparse.Namespace, models: list[Any], facts: Any) -> Any:
    """The planner on the command line's targets and margin (sizing.planner.plan_repository)."""
    from tritonfleet.cli.common import planning_targets
    from tritonfleet.sizing import planner

    targets = {
        name: planner.Target(concurrency=n) if kind == "concurrency" else planner.Target(tokens=n)
        for name, (kind, n) in planning_targets(args).items()
    }
    margin = planner.MARGIN if args.margin is None else args.margin
    return planner.plan_repository(models, facts, str(args.host_facts), targets, margin)


def run(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table

    from tritonfleet.cli.common import print_json
    from tritonfleet.cli.repository import load_and_validate
    from tritonfleet.console import console
    from tritonfleet.errors import InputError
    from tritonfleet.units import GiB

    # The GPU image's vLLM serves what is planned: its engine arguments are the ones checked.
    models, facts, _ = load_and_validate(args, "vllm", planning=True)
    planned = plan_for_args(args, models, facts)
    if args.model and planned.skipped:
        raise InputError(args.src, None, planned.skipped[0])
    if planned.host is None:
        raise InputError(args.src, None, "no model to plan: " + "; ".join(planned.skipped))
    host = planned.host
    rows = [
        {
            "model": p.name,
            "gpus": list(p.gpus),
            "weights_gib": round(p.estimate.weights / GiB, 2),
            "kv_cache_gib": round(p.estimate.kv_cache / GiB, 2),
            "kv_cache_tokens": p.estimate.kv_cache_tokens,
            "max_concurrency": round(p.estimate.max_concurrency, 2),
            "gpu_memory_utilization": p.utilization,
            "needed_utilization": p.needed_utilization,
            "headroom_gib": round(p.headroom_bytes / GiB, 2),
        }
        for p in host.models
    ]
    surplus = {str(g): round(b / GiB, 2) for g, b in host.surplus_bytes.items()}
    if args.format == "json":
        report = {"host_facts": str(args.host_facts), "margin": host.margin, "models": rows}
        print_json(
            {**report, "start_order": host.start_order, "surplus_gib": surplus, "notes": planned.notes}
        )
        return 0
    table = Table(title=escape(f"{args.host_facts}: plan per GPU (margin {host.margin:.0%})"))
    for column in ("model", "GPUs", "weights GiB", "KV GiB", "KV tokens", "max concurrency", "utilization",
                   "headroom GiB"):  # fmt: skip
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in rows:
        table.add_row(
            escape(row["model"]),
            ",".join(map(str, row["gpus"])),
            f"{row['weights_gib']:.2f}",
            f"{row['kv_cache_gib']:.2f}",
            f"{row['kv_cache_tokens']:,}",
            f"{row['max_concurrency']:.1f}",
            f"{row['gpu_memory_utilization']:.3f}",
            f"{row['headroom_gib']:.2f}",
        )
    out = console()
    out.print(table)
    out.print(f"start order: {' -> '.join(host.start_order)}")
    out.print("surplus per GPU (GiB): " + ", ".join(f"{g}: {v:.2f}" for g, v in surplus.items()))
    for note in planned.notes:
        out.print(f"note: {escape(note)}")
    return 0
