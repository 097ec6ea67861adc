"""How long a tritonfleet command takes to start, against a bare Python start measured in the same run.

`make bench-startup` runs this. Each command runs `--runs` times as a fresh process (as an operator
or Ansible runs it); the table gives the median and slowest wall time, and the ratio to `python -c
pass`. With `--before REV` the same commands also run from that commit's src/ (same interpreter and
packages), interleaved with the current ones, and the table gives the speed-up. The target (the
issue's) is 150 ms for `--help`, `versions` and `render`.

This is a benchmark, not a test: it prints figures and asserts nothing beyond the commands succeeding.
"""

from __future__ import annotations

import argparse
import os
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


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        raise SystemExit(f"bench-startup: {' '.join(command)} failed ({done.returncode}): {done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per command (default 15)")
    parser.add_argument("--before", metavar="REV", help="also time this commit's src/, as the baseline")
    args = parser.parse_args()
    if args.before:
        with tempfile.TemporaryDirectory() as old:
            archive = subprocess.run(
                ["git", "archive", args.before, "src"], cwd=ROOT, capture_output=True, check=True
            )
            subprocess.run(["tar", "-x", "-C", old], input=archive.stdout, check=True)
            env = {**os.environ, "PYTHONPATH": f"{old}/src", "TRITONFLEET_ROOT": str(ROOT)}
            compare(args.runs, args.before, env)
        return
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


def compare(runs: int, before: str, env: dict[str, str]) -> None:
    """The current tree against REV's, run for run, through `python -c` so that PYTHONPATH picks the tree."""
    entry = [sys.executable, "-c", "import sys; from tritonfleet.cli import main; sys.exit(main())"]
    with tempfile.TemporaryDirectory() as scratch:
        render = ["render", str(ROOT / "model_repository")]
        commands = {  # command -> (argv for REV, argv now); REV's render writes no marker: its own DEST
            "--help": (["--help"], ["--help"]),
            "versions": (["versions"], ["versions"]),
            "render (3 models)": (
                [*render, f"{scratch}/before", "--force"],
                [*render, f"{scratch}/now", "--force"],
            ),
        }
        table = Table(title=f"start-up, this tree vs {before} ({runs} runs each, median wall ms)")
        for column in ("command", before, "now", "speed-up", "target"):
            table.add_column(column, justify="left" if column == "command" else "right")
        for label, (old_argv, new_argv) in commands.items():
            old_runs, new_runs = [], []
            for _ in range(runs):  # interleaved, so that load on the machine hits both alike
                old_runs.append(timed([*entry, *old_argv], env))
                new_runs.append(timed([*entry, *new_argv]))
            old, new = statistics.median(old_runs), statistics.median(new_runs)
            verdict = "met" if new <= TARGET_MS else "MISSED"
            table.add_row(label, f"{old:.0f}", f"{new:.0f}", f"{old / new:.1f}x", verdict)
    console().print(table)


if __name__ == "__main__":
    main()
