"""The smoke gate's wall time for fleets of 1, 2 and 4 hosts, and against checking them one at a time.

`make bench-smoke` brings the CPU stack up and runs this. Each "host" is a name for the same server
(this machine has one stack and 2 cores), so a fleet of N puts N times the load on one engine: the
figures bound from above what N real hosts, each with its own engine, would take. The baseline is the
same fleet with --parallel 1, measured in the same run.

This is a benchmark, not a test: it prints figures and asserts nothing beyond the gate passing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.table import Table

from tritonfleet.console import console as wide_console

TOOL = Path(sys.executable).parent / "tritonfleet"
TARGET_PER_HOST = 20.0  # seconds, the target for one host on the CPU stack


def gate_once(url: str, hosts: int, parallel: int) -> tuple[float, float]:
    """(the gate's wall time, its slowest host's time) for `hosts` names of one server."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        targets = [arg for i in range(hosts) for arg in ("--target", f"h{i + 1}={url}")]
        done = subprocess.run(
            [TOOL, "smoke", *targets, "--parallel", str(parallel), "--json", report],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"bench-smoke: the gate did not pass (exit {done.returncode}):\n{done.stdout}")
        data = json.loads(report.read_text())
    return data["seconds"], max(host["seconds"] for host in data["hosts"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the stack, http://HOST:PORT?grpc=PORT&metrics=PORT")
    parser.add_argument("--rounds", type=int, default=3, help="runs per row; the table shows medians")
    parser.add_argument("--hosts", default="1,2,4", help="fleet sizes, comma-separated")
    args = parser.parse_args()
    console = wide_console()
    sizes = [int(n) for n in args.hosts.split(",")]
    rows = []
    for size in sizes:
        for parallel in (size, 1) if size > 1 else (1,):
            walls, slowest = [], []
            for round_no in range(args.rounds):
                wall, slow = gate_once(args.url, size, parallel)
                walls.append(wall)
                slowest.append(slow)
                console.print(f"{size} host(s), parallel {parallel}, round {round_no + 1}: {wall:.2f} s")
            rows.append((size, parallel, statistics.median(walls), statistics.median(slowest)))
    one_host = next(wall for size, _, wall, _ in rows if size == 1) if 1 in sizes else None
    table = Table(
        title=f"tritonfleet smoke: wall time (median of {args.rounds}), every host a name of one CPU stack"
    )
    columns = ["hosts", "parallel", "gate wall s", "slowest host s", "wall / slowest host"]
    columns += ["wall / 1-host wall", "sequential / parallel", f"<= {TARGET_PER_HOST:g} s per host"]
    for column in columns:
        table.add_column(column, justify="right")
    sequential = {size: wall for size, parallel, wall, _ in rows if parallel == 1}
    for size, parallel, wall, slow in rows:
        speedup = f"{sequential[size] / wall:.2f}" if parallel > 1 else "-"
        table.add_row(
            str(size),
            str(parallel),
            f"{wall:.2f}",
            f"{slow:.2f}",
            f"{wall / slow:.2f}",
            f"{wall / one_host:.2f}" if one_host else "-",
            speedup,
            "yes" if slow <= TARGET_PER_HOST else "NO",
        )
    console.print(table)


if __name__ == "__main__":
    main()
