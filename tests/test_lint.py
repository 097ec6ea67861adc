"""ruff, yamllint and ansible-lint (production profile) stay clean: part of the suite so that CI enforces
them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["yamllint", "--strict", "."],
        # --offline: Galaxy is out of reach, and the collections come with the ansible package.
        ["ansible-lint", "--profile", "production", "--offline", "--nocolor", "ansible/"],
    ],
    ids=["ruff-check", "ruff-format", "yamllint", "ansible-lint"],
)
def test_linter_is_clean(command):
    result = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
