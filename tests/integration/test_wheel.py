"""tritonfleet installed from its wheel, outside the checkout, as a control node or an offline bundle has it.

The wheel is built from a copy of the tracked files, installed into a new virtualenv with the locked
dependencies, and run from a folder outside the checkout with no TRITONFLEET_ROOT: its pinned versions
and its smoke suite must come from the package itself, and the gate must pass against the CPU stack.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cpu_stack import MODEL, Stack
from helpers import MODEL_REPOSITORY, ROOT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The bin/ folder of a new virtualenv with tritonfleet installed from its wheel."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, tracked):
        origin, copy = ROOT / name, source / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_symlink():
            copy.symlink_to(origin.readlink())
        elif origin.is_file():
            shutil.copy2(origin, copy)
    venv = ROOT / ".venv" / "bin"
    build = [venv / "python", "-m", "build", "--wheel", "--no-isolation", "--outdir", work / "dist", source]
    built = subprocess.run(build, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (work / "dist").glob("tritonfleet-*.whl")
    python = subprocess.run([ROOT / "scripts" / "find-python"], capture_output=True, text=True, check=True)
    target = work / "venv"
    subprocess.run([python.stdout.strip(), "-m", "venv", target], check=True)
    for args in (["--require-hashes", "-r", ROOT / "requirements" / "lock.txt"], ["--no-deps", wheel]):
        done = subprocess.run(
            [target / "bin" / "pip", "install", "--quiet", *args], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-3000:]
    yield target / "bin"


def run(installed: Path, cwd: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TRITONFLEET_ROOT", "PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([installed / args[0], *args[1:]], cwd=cwd, env=env, capture_output=True, text=True)


def test_the_package_runs_from_the_virtualenv_not_the_checkout(installed: Path, tmp_path: Path):
    done = run(installed, tmp_path, "python", "-c", "import tritonfleet; print(tritonfleet.__file__)")
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).is_relative_to(installed.parent)
    assert not Path(done.stdout.strip()).is_relative_to(ROOT)


def test_versions_come_from_the_package(installed: Path, tmp_path: Path, cli):
    done = run(installed, tmp_path, "tritonfleet", "versions")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads(cli("versions").out)
    image = run(installed, tmp_path, "tritonfleet", "versions", "triton.image_ref")
    assert image.stdout == cli("versions", "triton.image_ref").out


def test_render_works_outside_the_checkout(installed: Path, tmp_path: Path):
    shutil.copytree(MODEL_REPOSITORY, tmp_path / "models")
    done = run(installed, tmp_path, "tritonfleet", "render", "models", "rendered", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert [m["name"] for m in json.loads(done.stdout)["models"]] == sorted(
        p.name for p in MODEL_REPOSITORY.iterdir()
    )
    assert (tmp_path / "rendered" / MODEL / "config.pbtxt").is_file()


def test_the_shipped_smoke_suite_passes_against_the_cpu_stack(installed: Path, tmp_path: Path, stack: Stack):
    target = f"{stack.http}?grpc={stack.grpc_port}&metrics={stack.metrics_port}"
    done = run(installed, tmp_path, "tritonfleet", "smoke", "--target", target, "--json", "report.json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    (host,) = report["hosts"]
    assert len(host["checks"]) == 14
    assert {c["outcome"] for c in host["checks"]} <= {"passed", "skipped"}
    suite = run(
        installed,
        tmp_path,
        "python",
        "-c",
        "from tritonfleet.gates import runner; print(runner.default_suite())",
    )
    assert Path(suite.stdout.strip()).is_relative_to(installed.parent)
