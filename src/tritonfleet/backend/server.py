"""What the backend learns about the tritonserver that runs it. Pure, apart from reading /proc."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# Where the image states the HTTP port, for a command line that names none (tritonserver's default).
PORT_ENV = "TRITON_HTTP_PORT"


def parameter(config: dict[str, Any], key: str) -> str | None:
    """A model config `parameters` entry's string value, lower-cased (NVIDIA's backend reads them so)."""
    value = config.get("parameters", {}).get(key, {})
    text = value.get("string_value") if isinstance(value, dict) else None
    return text.strip().lower() if isinstance(text, str) else None


def _command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace").split("\0")
    except OSError:
        return []


def parent_is_tritonserver(pid: int) -> bool:
    command = _command_line(pid)
    return bool(command) and Path(command[0]).name == "tritonserver"


def http_port(pid: int) -> int | None:
    """The HTTP port of tritonserver `pid` from its command line (else $TRITON_HTTP_PORT), or None:
    no HTTP, not tritonserver, or no port known."""
    command = _command_line(pid)
    if not command or Path(command[0]).name != "tritonserver":
        return None
    env = os.environ.get(PORT_ENV, "")
    port = int(env) if env.isdigit() else None
    for i, arg in enumerate(command):
        name, _, value = arg.partition("=")
        if not value and i + 1 < len(command) and name in ("--http-port", "--allow-http"):
            value = command[i + 1]
        if name == "--http-port" and value.isdigit():
            port = int(value)
        if name == "--allow-http" and value.lower() in ("false", "0", "no"):
            return None
    return port
