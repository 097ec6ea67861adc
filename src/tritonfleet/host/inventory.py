"""Ansible inventories, read through `ansible-inventory --list`: Ansible resolves them, we read its JSON.

tritonfleet imports nothing from Ansible; it runs the ansible-inventory of its own environment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tritonfleet.errors import InputError

TIMEOUT = 120.0
# The longest reason an error line carries from ansible-inventory's stderr.
REASON_CHARS = 300
# "[WARNING]: Failed to parse inventory with 'yaml' plugin: REASON" (ansible-core 2.19 and later), or
# "[WARNING]:  * Failed to parse /path/hosts.yml with yaml plugin: REASON" (before).
_PLUGIN_FAILURE = re.compile(r"Failed to parse (?:.*? )?with '?(?P<plugin>[\w.]+)'? plugin: (?P<reason>.*)")
# Where in the file Ansible found the problem: "Origin: /path/hosts.yml:3:1" (2.19 and later).
_ORIGIN = re.compile(r"^Origin: .*?:(?P<line>\d+)(?::(?P<column>\d+))?$")
_PREFIX = re.compile(r"^\[(?:WARNING|ERROR)\]:\s*(?:\*\s*)?")
# The plugins whose reason speaks to a file of each kind; the rest come after them.
_PLUGINS_BY_SUFFIX = {
    ".yml": ("auto", "yaml"),
    ".yaml": ("auto", "yaml"),
    ".json": ("yaml",),
    ".toml": ("toml",),
}
_NOT_A_PLUGIN_CONFIG = "no root 'plugin' key found"
_GENERIC = "No inventory was parsed"


def _command(path: Path) -> list[str]:
    beside = Path(sys.executable).parent / "ansible-inventory"
    return [str(beside) if beside.exists() else "ansible-inventory", "-i", str(path), "--list"]


def _trimmed(text: str, limit: int = REASON_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _blocks(stderr: str) -> list[list[str]]:
    """stderr in messages: each starts at a `[WARNING]:` or `[ERROR]:` line and runs to the next."""
    blocks: list[list[str]] = []
    for line in stderr.splitlines():
        if _PREFIX.match(line) or not blocks:
            blocks.append([line])
        else:
            blocks[-1].append(line)
    return blocks


def _plugin_failures(stderr: str) -> list[tuple[str, str]]:
    """(plugin, reason, with line and column where Ansible gives them), in the order Ansible tried them."""
    failures: list[tuple[str, str]] = []
    for first, *rest in _blocks(stderr):
        found = _PLUGIN_FAILURE.search(first)
        if not found:
            continue
        reason = found["reason"].strip()
        if any(line.strip() == "<<< caused by >>>" for line in rest):
            # ansible-core 2.19+: the cause repeats the reason; its Origin line says where.
            origins = [m for m in (_ORIGIN.match(line.strip()) for line in rest) if m]
            if origins:
                column = f", column {origins[0]['column']}" if origins[0]["column"] else ""
                reason += f" (line {origins[0]['line']}{column})"
        else:
            # Older Ansible wraps a long reason onto the lines below.
            reason = " ".join([reason, *(line.strip() for line in rest if line.strip())])
        failures.append((found["plugin"], reason))
    return failures


def failure_reason(stderr: str, path: Path, returncode: int) -> str:
    """The most specific reason in ansible-inventory's stderr for failing on PATH, on one short line.

    Ansible tries each inventory plugin in turn and ends with "No inventory was parsed"; the reason is
    in the failure of the plugin meant for the file: YAML (or an `auto` plugin config) for .yml/.yaml,
    TOML for .toml, INI for anything else.
    """
    failures = _plugin_failures(stderr)
    wanted = _PLUGINS_BY_SUFFIX.get(path.suffix.lower(), ("ini",))
    ranked = [f for plugin in wanted for f in failures if f[0] == plugin and _NOT_A_PLUGIN_CONFIG not in f[1]]
    if ranked or failures:
        plugin, reason = (ranked or failures)[0]
        return _trimmed(f"ansible-inventory could not parse it: {plugin} plugin: {reason}")
    messages = [" ".join(block).strip() for block in _blocks(stderr) if _PREFIX.match(block[0])]
    specific = [message for message in messages if _GENERIC not in message]
    errors = [message for message in specific if message.startswith("[ERROR]")]
    # No [WARNING] or [ERROR] line (a crash, a traceback): its last line says what went wrong.
    last = [line.strip() for line in stderr.splitlines() if line.strip()][-1:]
    chosen = (errors or specific or messages or last or [""])[0]
    if not chosen:
        return f"ansible-inventory exit {returncode}, and nothing on stderr"
    return _trimmed(f"ansible-inventory failed: {_PREFIX.sub('', chosen)}")


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
        raise InputError(path, None, failure_reason(done.stderr, path, done.returncode))
    try:
        data = json.loads(done.stdout)
    except ValueError as exc:
        raise InputError(path, None, f"ansible-inventory printed no JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(path, None, "ansible-inventory printed JSON that is not an object")
    return data
