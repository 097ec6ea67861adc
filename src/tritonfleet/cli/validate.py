"""`tritonfleet validate`: check a model repository for an engine (and a host) without writing."""

from __future__ import annotations

import argparse

from tritonfleet.cli.repository import add_host_facts_argument, add_repository_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_repository_arguments(parser)
    add_host_facts_argument(parser)


def validate(args: argparse.Namespace) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from tritonfleet.cli.repository import load_and_validate, report

    models, _, spec = load_and_validate(args, args.engine)
    report(args.format, models, args.src, "valid", spec, [])
    return 0
