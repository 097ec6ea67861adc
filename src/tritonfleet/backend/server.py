"""What the backend learns about the tritonserver that runs it. Pure, apart from reading /proc."""

from __future__ import annotations

from pathlib import Path
from typing import Any


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
