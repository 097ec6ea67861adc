"""What several commands share: argument types, output helpers, the planner's flags."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

from tritonfleet.errors import InputError
from tritonfleet.sizing import MARGIN


def finite_float(low: float, high: float, *, low_open: bool = False):
    """An argparse type: a finite number in [low, high] (or (low, high] with low_open)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if value < low or (low_open and value == low) or value > high:
            bracket = "(" if low_open else "["
            raise argparse.ArgumentTypeError(f"{text} is outside {bracket}{low:g}, {high:g}]")
        return value

    return parse


def whole_number(low: int, high: int):
    """An argparse type: a whole number in [low, high]."""

    def parse(text: str) -> int:
        # ASCII digits only: int() also takes "+8", " 8", "8_000" and other scripts' digits ("٣").
        if not re.fullmatch(r"-?[0-9]{1,19}", text):
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is outside [{low}, {high}]")
        return value

    return parse


def tcp_port(text: str) -> int:
    """An argparse type: a TCP port, as a target's port is read (serving.targets.parse_port)."""
    from tritonfleet.serving.targets import parse_port

    try:
        return parse_port(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def path_arg(text: str) -> Path:
    """An argparse type: a path; an empty one is refused (it would silently mean the working directory)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path; give a file or folder")
    return Path(text)


def file_arg(text: str) -> Path:
    """An argparse type: the path of a file to write (a trailing slash names a folder, not a file)."""
    if text.endswith("/"):
        raise argparse.ArgumentTypeError(f"{text!r} ends with '/', so names a folder; give a file name")
    return path_arg(text)


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def add_planning_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that size models for a host; `plan` and `render --host-facts` share them."""
    parser.add_argument(
        "--concurrency", action="append", default=[], metavar="MODEL=N", help="full-length sequences at once"
    )
    parser.add_argument("--kv-tokens", action="append", default=[], metavar="MODEL=N", help="KV-cache tokens")
    parser.add_argument(
        "--margin",
        type=finite_float(0.0, 0.99),
        metavar="M",
        help=f"safety margin on top of the estimate, in [0, 0.99] (default {MARGIN:g})",
    )


def planning_targets(args: argparse.Namespace) -> dict[str, tuple[str, int]]:
    """MODEL -> ("concurrency" | "tokens", N) from --concurrency and --kv-tokens; one target per model."""
    found: dict[str, tuple[str, int]] = {}
    for flag, kind, pairs in (("--concurrency", "concurrency", args.concurrency),
                              ("--kv-tokens", "tokens", args.kv_tokens)):  # fmt: skip
        for pair in pairs:
            name, sep, number = pair.partition("=")
            if not sep or not name or not number.isascii() or not number.isdigit() or int(number) < 1:
                raise InputError(flag, pair, "expected MODEL=N with N a positive whole number")
            if int(number) > 10**9:
                raise InputError(flag, pair, f"{number} is more than any GPU can hold")
            if name in found:
                was = "--concurrency" if found[name][0] == "concurrency" else "--kv-tokens"
                raise InputError(flag, pair, f"{name} already has a target from {was}; give one per model")
            found[name] = (kind, int(number))
    return found
