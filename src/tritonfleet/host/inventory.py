"""Ansible inventories, read through `ansible-inventory --list`: Ansible resolves them, we read its JSON.

tritonfleet imports nothing from Ansible; it runs the ansible-inventory of its own environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tritonfleet.errors import InputError

TIMEOUT = 120.0


def _command(path: Path) -> list[str]:
    beside = Path(sys.executable).parent / "ansible-inventory"
    return [str(beside) if beside.exists() else "ansible-inventory", "-i", str(path), "--list"]


def read(path: Path) -> dict[str, Any]:
    """The `--list` JSON of the inventory at PATH; InputError with Ansible's own reason when it fails."""
    if not path.exists():
        raise InputError(path, None, "no such inventory")
    env = {**os.environ, "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true", "ANSIBLE_NOCOLOR": "1"}
    try:
        done = subprocess.run(_command(path), capture_output=True, text=True, env=env, timeout=TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InputError(path, None, f"ansible-inventory could not run: {exc}") from exc
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if "ERROR" in line] or done.stderr.splitlines()
        raise InputError(path, None, errors[0] if errors else f"ansible-inventory exit {done.returncode}")
    try:
        data = json.loads(done.stdout)
    except ValueError as exc:
        raise InputError(path, None, f"ansible-inventory printed no JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(path, None, "ansible-inventory printed JSON that is not an object")
    return data
