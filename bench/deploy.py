"""The rollout's wall time on the simulated fleet: from bare hosts, a no-op redeploy, its growth with
the number of hosts, and a failed canary's return to its previous release.

`make bench-deploy` runs this. For each fleet size N it makes N bare hosts (`scripts/fleet up N` with
FLEET_FRESH=1), times `ansible-playbook ansible/site.yml` from bare to serving and gated, then a no-op
redeploy twice: with the default batches (a canary, then 50%, then the rest) and with every host in one
batch (`tritonfleet_serial=['100%']`), which is how time grows with N when only forks limit it. With
the largest fleet it deploys a release whose model.json vLLM refuses, and reads from the playbook's
task timestamps how long the canary took from its failed release to its previous release serving and
gated again. forks (ansible.cfg: 16) exceed every N here, and pipelining is on.

This is a benchmark, not a test: it prints figures; it asserts only that each run ended as expected.
The hosts share this machine's 2 cores, so N CPU engines starting at once slow each other down, and
"CPU busy" (this machine's busy share during the one-batch no-op, from /proc/stat) says when a no-op
is bound by those cores rather than by forks: then its time grows with N however many forks there are.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.table import Table

from tritonfleet.console import console as wide_console

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOK = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "ansible/inventories/simulated"]
NOOP_TARGET = 30.0  # seconds for a no-op redeploy of 2 hosts (the goal)
ROLLBACK_TARGET = 60.0  # seconds from a canary's failed gate to its previous release serving
# profile_tasks prints, under each task: "Tuesday 01 December 2026  20:58:22 +0000 (0:00:00.329) ..."
_STAMP = re.compile(r"^\w+ (\d{2} \w+ \d{4}\s+\d{2}:\d{2}:\d{2}) ")


def fleet_up(hosts: int) -> None:
    env = {**os.environ, "FLEET_FRESH": "1"}
    subprocess.run(
        [str(ROOT / "scripts" / "fleet"), "up", str(hosts)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of this machine so far, from /proc/stat's first line."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def busy_since(before: tuple[int, int]) -> float:
    """The share of this machine's CPU time that was busy since BEFORE (0 to 1)."""
    busy, total = cpu_jiffies()
    return (busy - before[0]) / max(total - before[1], 1)


@dataclass(frozen=True)
class Run:
    """One playbook run: its wall time, the share of this machine's CPU that was busy meanwhile (the
    hosts share its cores with Ansible, so a time that grows with N at a saturated CPU says so), and
    what it printed."""

    seconds: float
    busy: float
    done: subprocess.CompletedProcess[str]


def playbook(*extra: str) -> Run:
    env = {**os.environ, "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"}
    start = time.monotonic()
    before = cpu_jiffies()
    done = subprocess.run(
        [*PLAYBOOK, "ansible/site.yml", "--limit", "sim_fleet", *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    return Run(time.monotonic() - start, busy_since(before), done)


def expect(done: subprocess.CompletedProcess[str], ok: bool, what: str) -> None:
    if (done.returncode == 0) != ok:
        raise SystemExit(f"bench-deploy: {what} exited {done.returncode}:\n{done.stdout[-4000:]}")


def task_times(output: str) -> list[tuple[str, datetime]]:
    """(task title, when it started) in order, from profile_tasks' stamps."""
    found = []
    title = ""
    for line in output.splitlines():
        if line.startswith("TASK ["):
            title = line[6 : line.index("]")]
        match = _STAMP.match(line)
        if match and title:
            found.append((title, datetime.strptime(" ".join(match[1].split()), "%d %B %Y %H:%M:%S")))
            title = ""
    return found


def rollback_seconds(output: str) -> float:
    """From the rescue's first task (the failure is known) to the gate of the previous release passing."""
    times = task_times(output)
    start = next(t for title, t in times if title == "Remember why the release failed.")
    end = next(t for title, t in times if title == "Record that the host is back on its previous release.")
    return (end - start).total_seconds()


def broken_repository(scratch: Path) -> Path:
    repo = scratch / "model_repository"
    shutil.copytree(ROOT / "model_repository", repo)
    engine_args = repo / "tiny-llama" / "1" / "model.json"
    engine_args.write_text(json.dumps({**json.loads(engine_args.read_text()), "max_model_len": 100000}))
    return repo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="1,2,4", help="fleet sizes, comma-separated")
    args = parser.parse_args()
    sizes = [int(n) for n in args.hosts.split(",")]
    table = Table(
        title="bench-deploy: ansible/site.yml on the simulated fleet (seconds)", title_justify="left"
    )
    columns = ("hosts", "from bare", "no-op, canary batches", "no-op, one batch", "no-op / host", "CPU busy")
    for column in columns:
        table.add_column(column, justify="right")
    noop_two = None
    for hosts in sizes:
        fleet_up(hosts)
        bare = playbook()
        expect(bare.done, True, f"the deploy to {hosts} bare host(s)")
        noop = playbook()
        expect(noop.done, True, "the no-op redeploy")
        flat = playbook("-e", '{"tritonfleet_serial": ["100%"]}')
        expect(flat.done, True, "the no-op redeploy in one batch")
        if hosts == 2:
            noop_two = noop.seconds
        figures = (bare.seconds, noop.seconds, flat.seconds, flat.seconds / hosts)
        table.add_row(str(hosts), *(f"{f:.1f}" for f in figures), f"{flat.busy:.0%}")
    with tempfile.TemporaryDirectory() as scratch:
        repo = broken_repository(Path(scratch))
        failed = playbook(
            "-e", f"validate_model_repository={repo}", "-e", f"triton_service_model_repository={repo}"
        )
        expect(failed.done, False, "the broken release")
        back = rollback_seconds(failed.done.stdout)
    console = wide_console()
    console.print(table)
    summary = Table(title="bench-deploy: goals", title_justify="left")
    for column in ("figure", "measured (s)", "goal (s)", "ratio"):
        summary.add_column(column, justify="right")
    if noop_two is not None:
        summary.add_row(
            "no-op redeploy, 2 hosts",
            f"{noop_two:.1f}",
            f"{NOOP_TARGET:.0f}",
            f"{noop_two / NOOP_TARGET:.2f}",
        )
    summary.add_row(
        "canary: failed release to previous serving and gated",
        f"{back:.0f}",
        f"{ROLLBACK_TARGET:.0f}",
        f"{back / ROLLBACK_TARGET:.2f}",
    )
    summary.add_row("the whole failed run (canary only)", f"{failed.seconds:.0f}", "", "")
    console.print(summary)


if __name__ == "__main__":
    main()
