"""Helpers for tests on the simulated fleet (scripts/fleet): bring it up or down, run commands on its hosts.

The fleet is shared machine state, not a fixture's: test_fleet.py takes it down at its end. A module that
needs it calls fleet_up() in its own fixture; that costs about a second when the fleet already runs,
since `up` keeps running hosts as they are and its images are cached by content.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

from cpu_stack import make
from helpers import ROOT

FLEET = ROOT / "scripts" / "fleet"
FLEET_JSON = ROOT / "build" / "fleet" / "fleet.json"
INVENTORY = ROOT / "ansible" / "inventories" / "simulated"
LABEL = "tritonfleet.fleet=sim"
# A cold `up` builds three images and a Debian base (about a minute here); a cached one takes seconds.
UP_TIMEOUT = 900


@functools.cache
def _docker() -> None:
    """An engine that answers, as `make up` ensures one (scripts/docker-setup; fast when present)."""
    ready = make("docker")
    assert ready.returncode == 0, f"make docker failed:\n{ready.stdout[-2000:]}\n{ready.stderr[-2000:]}"


def fleet(*args: str, fresh: bool = False, timeout: float = UP_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """scripts/fleet ARGS as it is, whatever its exit status."""
    env = {**os.environ, "FLEET_FRESH": "1" if fresh else "0"}
    return subprocess.run(
        [str(FLEET), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def fleet_up(n: int = 2, fresh: bool = False) -> dict:
    """N hosts and the registry running (`fresh`: the hosts made anew, bare); build/fleet/fleet.json."""
    _docker()
    done = fleet("up", str(n), fresh=fresh)
    assert done.returncode == 0, f"scripts/fleet up {n} failed:\n{done.stderr[-4000:]}"
    written = Path(done.stdout.splitlines()[-1])
    assert written == FLEET_JSON, f"scripts/fleet up printed {written}, not {FLEET_JSON}"
    return json.loads(written.read_text())


def fleet_down() -> None:
    _docker()
    done = fleet("down")
    assert done.returncode == 0, f"scripts/fleet down failed:\n{done.stderr[-4000:]}"


def host_exec(
    host: str, *cmd: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """CMD run on HOST through `docker exec`, as the inventory's docker connection runs Ansible's modules."""
    done = subprocess.run(["docker", "exec", host, *cmd], capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, (
            f"{host}: {' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-2000:]}"
        )
    return done


def fleet_resources() -> dict[str, list[str]]:
    """What the fleet has on this engine: containers by name, volumes and networks."""

    def names(*listing: str) -> list[str]:
        shown = subprocess.run(["docker", *listing], capture_output=True, text=True, check=True).stdout
        return sorted(shown.split())

    return {
        "containers": names("ps", "--all", "--filter", f"label={LABEL}", "--format", "{{.Names}}"),
        # Named, not only labelled: a volume `docker run` made bare would be missed by the label.
        "volumes": [v for v in names("volume", "ls", "--quiet") if v.startswith(("tf-host-", "tf-registry"))],
        "networks": names("network", "ls", "--filter", f"label={LABEL}", "--format", "{{.Name}}"),
    }


def container_ids() -> dict[str, str]:
    listing = ["docker", "ps", "--all", "--filter", f"label={LABEL}", "--format", "{{.Names}} {{.ID}}"]
    shown = subprocess.run(listing, capture_output=True, text=True, check=True).stdout
    return dict(line.split() for line in shown.splitlines())


def ansible(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """An ansible command of this Python's venv, run from the checkout: its ansible.cfg pipelines."""
    command, *rest = args
    return subprocess.run(
        [str(Path(sys.executable).parent / command), "-i", str(INVENTORY), *rest],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
