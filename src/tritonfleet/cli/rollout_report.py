"""`tritonfleet rollout-report DIR`: one row per host of the last rollout (`make deploy` prints it)."""

from __future__ import annotations

import argparse

from tritonfleet.cli.common import path_arg


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "deploy_dir", type=path_arg, metavar="DIR", help="the rollout's folder (build/deploy)"
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")


def validate(args: argparse.Namespace) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from tritonfleet.cli.common import print_json
    from tritonfleet.console import console
    from tritonfleet.rollout import report

    outcomes = report.read_outcomes(args.deploy_dir)
    if args.format == "json":
        print_json([dataclasses.asdict(o) for o in outcomes])
    else:
        console().print(report.outcomes_table(outcomes))
    return 0 if outcomes and all(o.status == "serving" for o in outcomes) else 1
