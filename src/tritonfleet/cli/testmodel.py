"""`tritonfleet testmodel`: a tiny random-weight Llama that vLLM loads by path (no model hub)."""

from __future__ import annotations

import argparse

from tritonfleet.cli.common import path_arg, whole_number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=path_arg, metavar="DIR", help="new or empty directory to write")
    parser.add_argument(
        "--seed", type=whole_number(0, 2**32 - 1), default=0, help="random seed for the weights (default 0)"
    )


def validate(args: argparse.Namespace) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from tritonfleet import testmodel

    path = testmodel.generate(args.dir, seed=args.seed)
    info = testmodel.describe(path)
    size = f"{info['parameters']:,} parameters, {info['total_bytes']:,} bytes"
    print(f"wrote {path}: {info['architecture']}, {size}")
    return 0
