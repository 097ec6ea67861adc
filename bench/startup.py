"""How long a tritonfleet command takes to start, against a bare Python start measured in the same run.

`make bench-startup` runs this. Each command runs `--runs` times as a fresh process (as an operator
or Ansible runs it); the table gives the median and slowest wall time, and the ratio to `python -c
pass`. The target (the issue's) is 150 ms for `--help`, `versions` and `render`.

This is a benchmark, not a test: it prints figures and asserts nothing beyond the commands succeeding.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.table import Table

from tritonfleet.console import console

TOOL = str(Path(sys.executable).parent / "tritonfleet")
ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 150.0


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        raise SystemExit(f"bench-startup: {' '.join(command)} failed ({done.returncode}): {done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per command (default 15)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        dest = Path(scratch) / "rendered"
        cases: list[tuple[str, list[str], bool]] = [
            ("python -c pass (baseline)", [sys.executable, "-c", "pass"], False),
            ("tritonfleet --help", [TOOL, "--help"], True),
            ("tritonfleet versions", [TOOL, "versions"], True),
            ("tritonfleet versions triton.image_ref", [TOOL, "versions", "triton.image_ref"], True),
            (
                "tritonfleet render (3 models)",
                [TOOL, "render", str(ROOT / "model_repository"), str(dest), "--force"],
                True,
            ),
            (
                "tritonfleet validate --format json",
                [TOOL, "validate", str(ROOT / "model_repository"), "--format", "json"],
                False,
            ),
            ("tritonfleet smoke --help", [TOOL, "smoke", "--help"], False),
        ]
        timed(cases[1][1])  # warm the file cache and byte-code once
        rows = []
        for label, command, targeted in cases:
            runs = sorted(timed(command) for _ in range(args.runs))
            rows.append((label, statistics.median(runs), runs[-1], targeted))
    baseline = rows[0][1]
    table = Table(title=f"command start-up, {args.runs} runs each (wall ms; target {TARGET_MS:.0f} ms)")
    for column in ("command", "median ms", "max ms", "x bare python", "target"):
        table.add_column(column, justify="left" if column == "command" else "right")
    for label, median, slowest, targeted in rows:
        verdict = ("met" if median <= TARGET_MS else "MISSED") if targeted else "-"
        table.add_row(label, f"{median:.0f}", f"{slowest:.0f}", f"{median / baseline:.1f}", verdict)
    console().print(table)


if __name__ == "__main__":
    main()
