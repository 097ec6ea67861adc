"""The setup path: the lock covers the project's dependencies, and find-python picks a fit Python."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from helpers import ROOT

FIND_PYTHON = ROOT / "scripts" / "find-python"


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_lock_pins_every_dependency_by_version_and_hash():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    lock = (ROOT / "requirements" / "lock.txt").read_text()
    pinned = dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+) \\$", lock, flags=re.MULTILINE))
    assert wanted <= set(pinned), sorted(wanted - set(pinned))
    # Every pinned package carries at least one hash, so a rebuild gets the same bytes.
    blocks = re.split(r"^(?=[a-z0-9])", lock, flags=re.MULTILINE)
    assert all("--hash=sha256:" in b for b in blocks if re.match(r"[a-z0-9].*==", b))
    assert not re.search(r"^--(extra-)?index-url|^--find-links", lock, flags=re.MULTILINE)


def _fake_python(folder: Path, name: str, answer: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\necho '{answer}'\n")
    path.chmod(0o755)


def _find(path_dirs: list[Path], **env: str) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": os.pathsep.join(map(str, path_dirs)), "HOME": "/nonexistent", **env}
    return subprocess.run([str(FIND_PYTHON)], env=environment, capture_output=True, text=True, check=False)


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("bash", "env"):  # the script's own interpreter
        (folder / tool).symlink_to(subprocess.check_output(["which", tool], text=True).strip())
    return folder


def test_ubuntu_2404_python3_is_taken(bin_dir):
    _fake_python(bin_dir, "python3", "3.12 ok")
    result = _find([bin_dir])
    assert (result.returncode, result.stdout.strip()) == (0, str(bin_dir / "python3"))


def test_debian_12_skips_3_11_and_finds_pyenv(bin_dir, tmp_path):
    _fake_python(bin_dir, "python3", "3.11 ok")
    pyenv = tmp_path / "pyenv" / "versions" / "3.12.1" / "bin"
    pyenv.mkdir(parents=True)
    _fake_python(pyenv, "python3", "3.12 ok")
    result = _find([bin_dir], PYENV_ROOT=str(tmp_path / "pyenv"))
    assert (result.returncode, result.stdout.strip()) == (0, str(pyenv / "python3"))


def test_a_python_without_venv_gets_the_apt_hint(bin_dir):
    _fake_python(bin_dir, "python3", "3.12 noenv")
    result = _find([bin_dir])
    assert result.returncode == 1
    assert "apt-get install python3-venv" in result.stderr


def test_nothing_fit_is_a_clear_failure(bin_dir):
    _fake_python(bin_dir, "python3", "3.11 ok")
    result = _find([bin_dir])
    assert result.returncode == 1
    assert "no Python >= 3.12 found" in result.stderr


def test_an_explicit_old_python_is_refused(bin_dir):
    _fake_python(bin_dir, "python3.10", "3.10 ok")
    _fake_python(bin_dir, "python3", "3.12 ok")
    result = _find([bin_dir], PYTHON="python3.10")
    assert result.returncode == 1
    assert "PYTHON=python3.10 is Python 3.10" in result.stderr
