"""Paths and small helpers every test module shares (conftest.py cannot be imported by name)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL_REPOSITORY = ROOT / "model_repository"
GPU_HOSTS = Path(__file__).resolve().parent / "fixtures" / "gpu-hosts"


def dotenv(path: Path = ROOT / ".env") -> dict[str, str]:
    """The KEY=VALUE settings of .env (compose's own file), comments and blank lines skipped."""
    pairs = (
        line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


def write(folder: Path, name: str, content: str | bytes) -> Path:
    """A file in FOLDER holding CONTENT (bytes as they are, text as UTF-8)."""
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def error_line(excinfo) -> str:
    """The InputError's line, which must be one line."""
    line = str(excinfo.value)
    assert "\n" not in line
    return line


BIN = Path(sys.executable).parent


def ansible_env(**extra: str) -> dict[str, str]:
    """The environment of an ansible command run from the checkout: its ansible.cfg, this venv first."""
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        **extra,
    }


def local_playbook(path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """ansible-playbook on this host, local connection, with the venv's Python for modules."""
    command = [
        str(BIN / "ansible-playbook"),
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        *args,
        str(path),
    ]
    return subprocess.run(
        command, cwd=ROOT, env=ansible_env(**env), capture_output=True, text=True, timeout=300
    )
