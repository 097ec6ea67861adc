"""`tritonfleet render`: validate a model repository and write the copy one host serves.

With --host-facts the planner sizes gpu_memory_utilization for the host's GPUs, through the same
function `tritonfleet plan` prints (sizing.planner.plan_repository), with the same flags.
"""

from __future__ import annotations

import argparse

from tritonfleet.cli.common import add_planning_arguments, path_arg
from tritonfleet.cli.repository import add_host_facts_argument, add_repository_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_repository_arguments(parser)
    parser.add_argument("dest", type=path_arg, metavar="DEST", help="where to write the per-host copy")
    parser.add_argument(
        "--force", action="store_true", help="replace DEST if it is a repository tritonfleet rendered"
    )
    add_host_facts_argument(parser)
    add_planning_arguments(parser)


def validate(args: argparse.Namespace) -> None:
    from tritonfleet.cli.common import planning_targets
    from tritonfleet.errors import InputError

    planning_targets(args)  # malformed MODEL=N flags are named before any file is read
    planning = args.concurrency or args.kv_tokens or args.margin is not None
    if planning and args.host_facts is None:
        raise InputError("--host-facts", None, "required with --concurrency, --kv-tokens or --margin")


def run(args: argparse.Namespace) -> int:
    from tritonfleet.cli.plan import plan_for_args
    from tritonfleet.cli.repository import load_and_validate, report
    from tritonfleet.repository import render

    models, facts, spec = load_and_validate(args, args.engine, planning=True)
    notes: list[str] = []
    overrides: dict[str, dict[str, object]] = {}
    if facts is not None:
        planned = plan_for_args(args, models, facts)
        overrides = {name: {"gpu_memory_utilization": u} for name, u in planned.utilizations().items()}
        notes = planned.notes
    written = render.write_repository(models, args.src, args.dest, args.force, overrides)
    report(args.format, written, args.dest, "rendered", spec, notes)
    return 0
