"""`tritonfleet engine-args`: extract the pinned vLLMs' engine-argument lists from their wheels again."""

from __future__ import annotations

import argparse

from tritonfleet.cli.common import path_arg


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out-dir",
        type=path_arg,
        required=True,
        help="where to write them (make engine-args: the checkout's)",
    )


def validate(args: argparse.Namespace) -> None:
    from tritonfleet.files import check_writable_destination

    # Before the downloads (hundreds of MB), not after them.
    check_writable_destination(args.out_dir / "engine-args.json", "engine-argument lists")


def run(args: argparse.Namespace) -> int:
    from tritonfleet.pins import engine_args, versions

    for path in engine_args.refresh(versions.load(), args.out_dir):
        print(f"wrote {path}")
    return 0
