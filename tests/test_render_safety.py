"""render never loses data: a DEST typed wrong is refused before anything is written or removed.

Each case is one of the ways an operator's typo could have emptied a folder, and each asserts that
the folder's files are still there afterwards, byte for byte.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tritonfleet.repository import render
from tritonfleet.repository.render import MARKER

from helpers import MODEL_REPOSITORY

TINY = "tiny-llama"


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """/srv/x-like folder: a model repository and an operator's other files beside it."""
    root = tmp_path / "x"
    shutil.copytree(MODEL_REPOSITORY, root / "models")
    (root / "notes.txt").write_text("the operator's own file\n")
    return root


def test_dest_that_holds_the_source_is_refused_even_with_force(cli, workspace: Path):
    before = snapshot(workspace)
    result = cli("render", workspace / "models", workspace, "--force")
    assert result.code == 2
    assert result.err.strip() == (
        f"tritonfleet render: error: {workspace}: holds the source repository {workspace / 'models'}; "
        "render to a sibling folder"
    )
    assert snapshot(workspace) == before


def test_dot_as_dest_is_refused_not_a_traceback(cli, workspace: Path, monkeypatch):
    monkeypatch.chdir(workspace / "models")
    before = snapshot(workspace)
    result = cli("render", "../models", ".", "--force")
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "must not be inside the source repository" in result.err or "working directory" in result.err
    assert snapshot(workspace) == before


def test_the_working_directory_is_refused(cli, workspace: Path, tmp_path: Path, monkeypatch):
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    monkeypatch.chdir(elsewhere)
    result = cli("render", workspace / "models", ".", "--force")
    assert result.code == 2
    assert result.err.strip().endswith(": is the working directory; render into a folder of its own")
    assert (elsewhere / "keep.txt").read_text() == "keep"


def test_the_home_directory_is_refused(cli, workspace: Path, tmp_path: Path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("keep")
    monkeypatch.setenv("HOME", str(home))
    result = cli("render", workspace / "models", home, "--force")
    assert result.code == 2
    assert result.err.strip().endswith(": is the home directory; render into a folder of its own")
    assert (home / ".bashrc").read_text() == "keep"


def test_the_root_directory_is_refused():
    with pytest.raises(Exception, match=r"^/: is the root directory"):
        render.check_destination(MODEL_REPOSITORY, Path("/"), force=True)


def test_dest_equal_to_the_source_is_refused(cli, workspace: Path):
    before = snapshot(workspace)
    result = cli("render", workspace / "models", workspace / "models", "--force")
    assert result.code == 2
    assert "must not be inside the source repository" in result.err
    assert snapshot(workspace) == before


def test_force_refuses_a_folder_tritonfleet_did_not_render(cli, workspace: Path, tmp_path: Path):
    other = tmp_path / "data"
    other.mkdir()
    (other / "a.csv").write_text("1,2\n")
    (other / "b.csv").write_text("3,4\n")
    result = cli("render", workspace / "models", other, "--force")
    assert result.code == 2
    assert result.err.strip().endswith(
        f"{other}: holds files tritonfleet did not render (a.csv, b.csv); --force replaces only its own"
    )
    assert sorted(p.name for p in other.iterdir()) == ["a.csv", "b.csv"]


def test_force_replaces_an_empty_folder_and_a_rendered_one(cli, workspace: Path, tmp_path: Path):
    dest = tmp_path / "rendered"
    dest.mkdir()
    assert cli("render", workspace / "models", dest, "--model", TINY, "--force").code == 0
    assert (dest / MARKER).is_file()
    (dest / TINY / "stale.txt").write_text("old")
    assert cli("render", workspace / "models", dest, "--model", TINY, "--force").code == 0
    assert not (dest / TINY / "stale.txt").exists()


def test_a_symlink_as_dest_is_refused(cli, workspace: Path, tmp_path: Path):
    target = tmp_path / "real"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    result = cli("render", workspace / "models", link, "--force")
    assert result.code == 2
    assert result.err.strip().endswith(f"{link}: is a symlink; give the directory it points to")


def test_a_dest_whose_parent_is_a_file_says_so(cli, workspace: Path):
    result = cli("render", workspace / "models", workspace / "notes.txt" / "out")
    assert result.code == 2
    assert result.err.strip().endswith(f"{workspace / 'notes.txt'} is a file, not a directory")


def test_a_failed_rename_keeps_the_old_copy_and_leaves_nothing_behind(cli, workspace, tmp_path, monkeypatch):
    dest = tmp_path / "rendered"
    assert cli("render", workspace / "models", dest, "--model", TINY).code == 0
    before = snapshot(dest)
    real_replace = Path.replace

    def busy(self: Path, target):
        if Path(target) == dest and self.name.startswith(f".{dest.name}.new-"):
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(target))
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", busy)
    result = cli("render", workspace / "models", dest, "--force")
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "cannot write the repository" in result.err and "busy" in result.err.lower()
    assert snapshot(dest) == before  # the previous repository is back in place
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_symlink_loop_in_the_source_is_one_line(cli, workspace: Path, tmp_path: Path):
    loop = workspace / "models" / TINY / "loop"
    loop.symlink_to(loop)
    result = cli("render", workspace / "models", tmp_path / "out")
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_a_dangling_symlink_for_model_json_is_named(cli, workspace: Path, tmp_path: Path):
    engine_file = workspace / "models" / TINY / "1" / "model.json"
    engine_file.unlink()
    engine_file.symlink_to(tmp_path / "gone.json")
    result = cli("validate", workspace / "models")
    assert result.code == 2
    assert (
        result.err.strip()
        == f"tritonfleet validate: error: {engine_file}: missing: every version folder needs a model.json"
    )


def _tmpfs(path: Path, options: str, case: str):
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "none", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs CAP_SYS_ADMIN): the {case} case is not run")
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def small_tmpfs(tmp_path: Path):
    yield from _tmpfs(tmp_path / "small", "size=48k", "full-disk")


@pytest.fixture
def read_only(tmp_path: Path):
    yield from _tmpfs(tmp_path / "ro", "size=64k,ro", "read-only")


def test_a_full_file_system_is_one_line_and_leaves_nothing(cli, workspace: Path, small_tmpfs: Path):
    # The 70B model's folder alone is larger than 48 KiB: the copy runs out of space part way.
    (workspace / "models" / TINY / "padding.bin").write_bytes(os.urandom(200_000))
    result = cli("render", workspace / "models", small_tmpfs / "out")
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "No space left on device" in result.err
    assert list(small_tmpfs.iterdir()) == []


def test_a_read_only_file_system_is_one_line(cli, workspace: Path, read_only: Path):
    result = cli("render", workspace / "models", read_only / "out")
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "Read-only file system" in result.err
    assert list(read_only.iterdir()) == []


def test_stdout_on_a_full_device_is_one_line_not_a_traceback():
    tool = Path(os.environ.get("VIRTUAL_ENV", Path(__import__("sys").prefix))) / "bin" / "tritonfleet"
    with Path("/dev/full").open("w") as full:
        done = subprocess.run([str(tool), "versions"], stdout=full, stderr=subprocess.PIPE, text=True)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert "No space left on device" in done.stderr


def test_the_test_model_on_a_full_file_system_is_one_line_and_leaves_nothing(cli, small_tmpfs: Path):
    result = cli("testmodel", small_tmpfs / "tiny")
    assert result.code == 2
    assert result.err.strip() == (
        f"tritonfleet testmodel: error: {small_tmpfs / 'tiny'}: cannot write the test model: "
        "Error while serializing: I/O error: No space left on device (os error 28)"
    )
    assert list(small_tmpfs.iterdir()) == []


def test_the_test_model_on_a_read_only_file_system_is_one_line(cli, read_only: Path):
    result = cli("testmodel", read_only / "tiny")
    assert result.code == 2
    assert result.err.strip().endswith(
        f"{read_only / 'tiny'}: cannot write the test model: Read-only file system"
    )


def test_when_the_old_copy_cannot_be_put_back_the_error_says_where_it_is(
    cli, workspace, tmp_path, monkeypatch
):
    dest = tmp_path / "rendered"
    assert cli("render", workspace / "models", dest, "--model", TINY).code == 0
    before = snapshot(dest)
    real_replace = Path.replace

    def stuck(self: Path, target):
        if Path(target) == dest:  # neither the new copy nor the old one can be renamed into place
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(target))
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", stuck)
    result = cli("render", workspace / "models", dest, "--force")
    assert result.code == 2
    kept = result.err.strip().rpartition("; the previous one is in ")[2]
    assert kept and snapshot(Path(kept)) == before  # never deleted: the only copy
