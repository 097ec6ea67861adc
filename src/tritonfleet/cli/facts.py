"""`tritonfleet facts`: this host's GPUs, from nvidia-smi or from captured files."""

from __future__ import annotations

import argparse

from tritonfleet.cli.common import path_arg


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Reads nvidia-smi output from files, or runs the local nvidia-smi when no file is given."
    )
    parser.add_argument(
        "--query-csv",
        type=path_arg,
        metavar="FILE",
        help="output of `nvidia-smi --query-gpu=... --format=csv` (with its header row)",
    )
    parser.add_argument("--xml", type=path_arg, metavar="FILE", help="output of `nvidia-smi -q -x`")
    parser.add_argument("--topo", type=path_arg, metavar="FILE", help="output of `nvidia-smi topo -m`")
    parser.add_argument("--format", choices=("table", "json"), default="table")


def validate(args: argparse.Namespace) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    import sys

    from tritonfleet.console import console
    from tritonfleet.host import gpus

    if args.query_csv or args.xml or args.topo:
        facts = gpus.read_host_facts(args.query_csv, args.xml, args.topo)
    else:
        facts = gpus.probe_local()
    if args.format == "json":
        sys.stdout.write(facts.model_dump_json(indent=2) + "\n")
    else:
        console().print(gpus.facts_table(facts))
    return 0
