"""Shared test helpers: paths to the checkout and its fixtures, and a CLI runner."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tritonfleet.cli import main

from helpers import MODEL_REPOSITORY


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    def run(*argv: str | Path) -> Result:
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A writable copy of the project's model repository."""
    dest = tmp_path / "src-repo"
    shutil.copytree(MODEL_REPOSITORY, dest)
    return dest
