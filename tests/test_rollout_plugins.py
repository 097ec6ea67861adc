"""The rollout's own Ansible plugins, run by Ansible itself on this machine (`ansible localhost -m ...`).

tritonfleet_serving_state is the one read triton_service decides from (which release is current, which
are held whole, which weights a host has by content); tritonfleet_control_files writes the control
node's staging and records. A wrong answer from either would redeploy, prune or skip the wrong thing.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from helpers import BIN, ROOT, ansible_env

ACTION = "tritonfleet_control_files"
MEMLOCK = (ROOT / "scripts" / "memlock").read_text()


def adhoc(module: str, args: dict[str, Any], *flags: str) -> dict[str, Any]:
    """MODULE run once on localhost with ARGS; its result as Ansible's json callback reports it."""
    done = subprocess.run(
        [str(BIN / "ansible"), "localhost", "-c", "local", "-m", module, "-a", json.dumps(args), *flags],
        cwd=ROOT,
        env=ansible_env(ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


def serving_state(root: Path, **overrides: str) -> dict[str, Any]:
    args = {
        "root": str(root / "opt"),
        "weights_dir": str(root / "weights"),
        "hf_cache": str(root / "hf"),
        "memlock_script": MEMLOCK,
        **overrides,
    }
    return adhoc("tritonfleet_serving_state", args)


def release(root: Path, name: str, mtime: int, models: list[str], complete: bool = True) -> None:
    folder = root / "opt" / "releases" / name
    folder.mkdir(parents=True)
    for model in models:
        (folder / "model_repository" / model / "1").mkdir(parents=True)
    if complete:
        (folder / ".complete").write_text(f"{name}\n")
    os.utime(folder, (mtime, mtime))


def test_a_bare_host_holds_nothing(tmp_path: Path):
    state = serving_state(tmp_path)
    assert not state.get("failed"), state
    assert state["changed"] is False
    assert (state["current"], state["previous"], state["releases"], state["weights"]) == ("", "", [], {})
    assert state["caches_ready"] is False
    # What scripts/memlock prints on this machine: -1 (unlimited) or a byte count.
    assert state["memlock"] == "-1" or int(state["memlock"]) > 0


def test_the_state_names_the_links_releases_oldest_first_and_weights_by_content(tmp_path: Path):
    release(tmp_path, "bbb", 2_000, ["tiny-llama", "qwen"])
    release(tmp_path, "aaa", 1_000, ["tiny-llama"])
    release(tmp_path, "ccc", 3_000, [], complete=False)  # a copy that was cut off
    (tmp_path / "opt" / "current").symlink_to(tmp_path / "opt" / "releases" / "bbb")
    (tmp_path / "opt" / "previous").symlink_to(tmp_path / "opt" / "releases" / "aaa")
    marked = tmp_path / "weights" / "tiny-llama"
    marked.mkdir(parents=True)
    (marked / ".tritonfleet-0123abcd").touch()
    (marked / "config.json").write_text("{}")
    (tmp_path / "weights" / "half-copied").mkdir()
    (tmp_path / "hf").mkdir()
    for cache in ("weights", "hf"):
        (tmp_path / cache).chmod(0o755)

    state = serving_state(tmp_path, memlock_script="echo 8388608")
    assert (state["current"], state["previous"], state["memlock"]) == ("bbb", "aaa", "8388608")
    assert [(r["name"], r["complete"], r["models"]) for r in state["releases"]] == [
        ("aaa", True, ["tiny-llama"]),
        ("bbb", True, ["qwen", "tiny-llama"]),
        ("ccc", False, []),
    ]
    assert state["weights"] == {"tiny-llama": ["0123abcd"], "half-copied": []}
    # Only root owns the caches the role creates; this test runs as root on CI's machines.
    assert state["caches_ready"] is (os.geteuid() == 0)


@pytest.mark.skipif(os.geteuid() != 0, reason="the caches are root's; the mode check needs root")
def test_a_cache_with_another_mode_is_not_ready(tmp_path: Path):
    for cache in ("weights", "hf"):
        (tmp_path / cache).mkdir()
        (tmp_path / cache).chmod(0o755)
    assert serving_state(tmp_path)["caches_ready"] is True
    (tmp_path / "hf").chmod(0o700)
    assert serving_state(tmp_path)["caches_ready"] is False


def test_a_failing_memlock_probe_fails_the_read_with_its_reason(tmp_path: Path):
    state = serving_state(tmp_path, memlock_script="echo 'no /proc here' >&2; exit 3")
    assert state["failed"] is True
    assert state["msg"] == "the memlock probe failed (exit 3): no /proc here"


def test_files_are_written_once_and_then_left_alone(tmp_path: Path):
    source = tmp_path / "compose.yaml"
    source.write_text("services: {}\n")
    args = {
        "files": [
            {"path": str(tmp_path / "stage" / "release" / "compose.yaml"), "src": str(source)},
            {"path": str(tmp_path / "stage" / "release" / ".env"), "content": "A=1\n"},
        ],
        "directories": [str(tmp_path / "gate")],
    }
    first = adhoc("tritonfleet_control_files", args)
    assert first["changed"] is True and len(first["paths"]) == 3, first
    assert (tmp_path / "stage" / "release" / "compose.yaml").read_text() == "services: {}\n"
    assert (tmp_path / "stage" / "release" / ".env").read_text() == "A=1\n"
    assert (tmp_path / "gate").is_dir()
    assert oct((tmp_path / "stage" / "release" / ".env").stat().st_mode & 0o777) == oct(0o666 & ~umask())

    again = adhoc("tritonfleet_control_files", args)
    assert again["changed"] is False and again["paths"] == [], again


def test_check_mode_writes_nothing_and_diff_shows_the_change(tmp_path: Path):
    target = tmp_path / "outcome.json"
    target.write_text('{"status": "serving"}\n')
    args = {"files": [{"path": str(target), "content": '{"status": "rolled back"}\n'}]}
    done = adhoc("tritonfleet_control_files", args, "--check", "--diff")
    assert done["changed"] is True, done
    assert target.read_text() == '{"status": "serving"}\n'
    assert done["diff"] == [
        {
            "before_header": str(target),
            "after_header": str(target),
            "before": '{"status": "serving"}\n',
            "after": '{"status": "rolled back"}\n',
        }
    ]


def test_remove_takes_globs_in_folders_and_leaves_other_files(tmp_path: Path):
    for host in ("tf-host-1", "tf-host-2"):
        (tmp_path / "hosts" / host).mkdir(parents=True)
        for name in ("targeted", "outcome.json", "host-facts.json"):
            (tmp_path / "hosts" / host / name).write_text("x")
    args = {"remove": [f"{tmp_path}/hosts/*/targeted", f"{tmp_path}/hosts/*/outcome.json"]}
    done = adhoc("tritonfleet_control_files", args)
    assert done["changed"] is True and len(done["paths"]) == 4, done
    left = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "hosts").rglob("*") if p.is_file())
    assert left == ["hosts/tf-host-1/host-facts.json", "hosts/tf-host-2/host-facts.json"]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            {"files": [{"path": "/tmp/x"}]},
            "tritonfleet_control_files: files: each entry needs path and one of",
        ),
        ({"files": [{"content": "x"}]}, "tritonfleet_control_files: files: each entry needs path and one of"),
        ({"file": []}, f"{ACTION}: unknown option file"),
    ],
)
def test_a_bad_entry_fails_with_one_line_and_writes_nothing(tmp_path: Path, args: dict, line: str):
    args = {**args, "directories": [str(tmp_path / "never")]}
    done = adhoc("tritonfleet_control_files", args)
    assert done["failed"] is True and done["msg"].startswith(line), done
    assert "\n" not in done["msg"]
    assert not (tmp_path / "never").exists()


def test_a_file_that_cannot_be_written_is_named(tmp_path: Path):
    (tmp_path / "blocker").write_text("a file, not a folder")
    args = {"files": [{"path": str(tmp_path / "blocker" / "outcome.json"), "content": "{}"}]}
    done = adhoc("tritonfleet_control_files", args)
    assert done["failed"] is True, done
    assert (
        done["msg"]
        == f"{tmp_path}/blocker/outcome.json: cannot write file: {tmp_path}/blocker is not a directory"
    )


def umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
