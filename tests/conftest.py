"""Shared test helpers: paths to the checkout and its fixtures, and a CLI runner."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tritonfleet.cli import main

from helpers import GPU_HOSTS, MODEL_REPOSITORY


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


@pytest.fixture
def eight_b_repo(tmp_path: Path) -> Path:
    """A writable repository holding only the 8B model (with its hf-config.json)."""
    dest = tmp_path / "repo"
    shutil.copytree(MODEL_REPOSITORY / "llama-3.1-8b-instruct", dest / "llama-3.1-8b-instruct")
    return dest


@pytest.fixture
def h100_facts(cli, tmp_path: Path) -> Path:
    """Host facts of the real one-H100 capture, as `tritonfleet facts --format json` writes them."""
    result = cli("facts", "--query-csv", GPU_HOSTS / "h100-x1" / "smi-query.csv", "--format", "json")
    assert result.code == 0, result.err
    path = tmp_path / "facts.json"
    path.write_text(result.out)
    return path
