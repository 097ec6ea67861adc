"""files.py: every operator file is read and written one way, and every failure is one InputError line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tritonfleet import files
from tritonfleet.errors import InputError


def test_read_text_strips_a_bom_and_reads_utf8(tmp_path: Path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"\xef\xbb\xbfindex, name\n0, H\xc3\xa9\n")
    assert files.read_text(path) == "index, name\n0, Hé\n"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, r"host facts not found$"),
        (lambda p: p.symlink_to(p.parent / "gone"), r"host facts not found \(dangling symlink\)$"),
        (lambda p: p.symlink_to(p), r"cannot read host facts: symlink loop$"),
        (lambda p: p.mkdir(), r"host facts expected, found a directory$"),
        (lambda p: p.write_bytes(b"\xff\xfe{}"), r"host facts is not UTF-8 text \(byte 0\)$"),
    ],
    ids=["missing", "dangling", "loop", "directory", "not-utf8"],
)
def test_read_text_failures_are_one_line_naming_the_file(tmp_path: Path, make, message: str):
    path = tmp_path / "facts.json"
    make(path)
    with pytest.raises(InputError, match=message) as caught:
        files.read_text(path, "host facts")
    assert caught.value.source == str(path)
    assert "\n" not in caught.value.line()


def test_an_endless_file_is_refused_not_read_into_memory():
    with pytest.raises(InputError, match=r"^/dev/zero: nvidia-smi XML is larger than 64 MiB"):
        files.read_text("/dev/zero", "nvidia-smi XML")


def test_the_cli_refuses_dev_zero_as_nvidia_smi_output(cli):
    result = cli("facts", "--xml", "/dev/zero")
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "larger than 64 MiB" in result.err


def test_write_atomic_replaces_a_file_whole_and_leaves_no_temporary(tmp_path: Path):
    path = tmp_path / "report.json"
    path.write_text("old")
    files.write_atomic(path, "new\n")
    assert path.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_engine_args_checks_its_folder_before_downloading(cli, tmp_path: Path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    result = cli("engine-args", "--out-dir", not_a_folder)
    assert result.code == 2
    assert result.err.strip().endswith(
        f"cannot write engine-argument lists: {not_a_folder} is not a directory"
    )


@pytest.mark.parametrize("name", ["config.pbtxt", "1/model.json", "hf-config.json"])
def test_a_fifo_in_the_model_repository_is_refused_not_waited_on(tmp_path: Path, name: str):
    import os
    import shutil
    import subprocess
    import sys

    from helpers import MODEL_REPOSITORY

    repo = tmp_path / "repo"
    shutil.copytree(MODEL_REPOSITORY / "llama-3.1-8b-instruct", repo / "llama-3.1-8b-instruct")
    fifo = repo / "llama-3.1-8b-instruct" / name
    fifo.unlink()
    os.mkfifo(fifo)
    facts = tmp_path / "facts.json"
    csv = Path(__file__).parent / "fixtures" / "gpu-hosts" / "h100-x1" / "smi-query.csv"
    tool = Path(sys.executable).parent / "tritonfleet"
    made = subprocess.run(
        [tool, "facts", "--query-csv", csv, "--format", "json"], capture_output=True, text=True
    )
    facts.write_text(made.stdout)
    done = subprocess.run(
        [tool, "plan", repo, "--host-facts", facts], capture_output=True, text=True, timeout=60
    )  # a read of the FIFO would block until the timeout
    assert done.returncode == 2
    said = {
        "config.pbtxt": "model configuration is not a regular file",
        "1/model.json": "engine arguments is not a regular file",
        "hf-config.json": "cannot read the model config: not a regular file",
    }[name]
    assert done.stderr.strip().endswith(f"{fifo}: {said} (a device, pipe or socket)")


def test_a_file_with_the_longest_legal_name_is_written(tmp_path: Path):
    # The temporary name beside it keeps only part of its name, so it stays under 255 bytes too.
    path = tmp_path / ("r" * 250 + ".json")
    files.check_writable_destination(path, "the --json report")
    files.write_atomic(path, "{}\n")
    assert path.read_text() == "{}\n"
