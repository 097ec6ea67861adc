"""scripts/docker-setup and scripts/base-image: their contracts, checked against a fake docker.

The real runs (apt, debootstrap, dockerd) take minutes and change the machine; these tests pin what
callers rely on: the fast paths touch nothing, failures are one clear line, and base-image prints a
content-addressed reference as its last stdout line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import ROOT

DOCKER_SETUP = ROOT / "scripts" / "docker-setup"
BASE_IMAGE = ROOT / "scripts" / "base-image"

# A docker CLI stand-in: records every call, answers from FAKE_* variables.
FAKE_DOCKER = r"""#!/usr/bin/env bash
echo "docker $*" >>"$FAKE_LOG"
case "$1 ${2:-}" in
  "info "*) exit "${FAKE_INFO_RC:-0}" ;;
  "version "*)
    case "$*" in
      *Server.APIVersion*) [ "${FAKE_INFO_RC:-0}" = 0 ] && echo "${FAKE_API:-1.45}" ;;
      *) echo "fake" ;;
    esac ;;
  "compose version")
    if [ "${3:-}" = --short ]; then echo 2.26.1; else echo "Docker Compose version 2.26.1"; fi ;;
  "buildx version") echo "github.com/docker/buildx 0.13.1" ;;
  "image inspect") exit "${FAKE_INSPECT_RC:-0}" ;;
  "tag "*) exit 0 ;;
  *) exit 99 ;;
esac
"""
# Commands that must not run on the paths tested here: they record the call and fail.
FORBIDDEN = r"""#!/usr/bin/env bash
echo "$(basename "$0") $*" >>"$FAKE_LOG"
exit 97
"""
FAKE_ID = r"""#!/usr/bin/env bash
if [ "${1:-}" = -u ]; then echo "${FAKE_UID:-0}"; else exec /usr/bin/id "$@"; fi
"""


@pytest.fixture
def fake(tmp_path: Path):
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, text in {"docker": FAKE_DOCKER, "id": FAKE_ID}.items():
        (folder / name).write_text(text)
    for name in ("apt-get", "debootstrap", "dockerd", "systemctl"):
        (folder / name).write_text(FORBIDDEN)
    for path in folder.iterdir():
        path.chmod(0o755)
    log = tmp_path / "calls.log"
    log.touch()

    def run(script: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environment = {
            "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(tmp_path),
            "FAKE_LOG": str(log),
            **env,
        }
        return subprocess.run(
            [str(script), *args], env=environment, capture_output=True, text=True, check=False
        )

    run.calls = lambda: log.read_text().splitlines()  # type: ignore[attr-defined]
    return run


def test_docker_setup_fast_path_only_reports(fake):
    result = fake(DOCKER_SETUP)
    assert result.returncode == 0, result.stderr
    assert "compose: 2.26.1" in result.stdout
    assert "buildx: github.com/docker/buildx" in result.stdout
    assert all(call.startswith("docker ") for call in fake.calls()), fake.calls()


def test_docker_setup_refuses_an_old_engine_without_root(fake):
    # Engine 20.10 (API 1.41) answers, but its BuildKit lacks named contexts: the script must act.
    result = fake(DOCKER_SETUP, FAKE_API="1.41", FAKE_UID="1000")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "docker-setup: error: run as root (installs packages and starts dockerd)"
    ]
    assert not [c for c in fake.calls() if not c.startswith("docker ")]


def test_base_image_usage(fake):
    result = fake(BASE_IMAGE)
    assert result.returncode == 2
    assert "Usage: scripts/base-image NAME SUITE" in result.stderr


@pytest.mark.parametrize(
    ("name", "suite"), [("Tritonfleet/Debian", "bookworm"), ("tf/debian", "bookworm;rm")]
)
def test_base_image_rejects_bad_arguments(fake, name, suite):
    result = fake(BASE_IMAGE, name, suite)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("base-image: error:")


def test_base_image_needs_an_engine(fake):
    result = fake(BASE_IMAGE, "tf/debian", "bookworm", FAKE_INFO_RC="1")
    assert result.returncode == 1
    assert "run scripts/docker-setup first" in result.stderr


def test_base_image_cached_prints_the_ref_last_and_builds_nothing(fake):
    result = fake(BASE_IMAGE, "tritonfleet/debian", "bookworm")
    assert result.returncode == 0, result.stderr
    ref = result.stdout.splitlines()[-1]
    assert re.fullmatch(r"tritonfleet/debian:bookworm-[0-9a-f]{12}", ref)
    assert f"docker tag {ref} tritonfleet/debian:bookworm" in fake.calls()
    assert not [c for c in fake.calls() if c.startswith("debootstrap")]


def _ref(fake, suite: str, **env: str) -> str:
    result = fake(BASE_IMAGE, "tf/debian", suite, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[-1]


def test_base_image_tag_is_a_content_hash(fake):
    bookworm = _ref(fake, "bookworm")
    assert _ref(fake, "bookworm") == bookworm  # stable
    assert _ref(fake, "trixie").startswith("tf/debian:trixie-")
    assert _ref(fake, "trixie").split("-")[-1] != bookworm.split("-")[-1]
    assert _ref(fake, "bookworm", BASE_IMAGE_INCLUDE="ca-certificates") != bookworm


SHELL_SCRIPTS = [*sorted((ROOT / "scripts").iterdir()), ROOT / ".ci" / "run"]


# CI installs shellcheck (.ci/run); a developer machine without it skips, saying so.
@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_scripts_are_shellcheck_clean(script):
    result = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
