"""The roles' Molecule scenarios: `molecule test` of each ansible/roles/<role>/molecule/default.

Each scenario boots the simulated fleet's host image (Debian booted by systemd, `scripts/fleet image`,
cached by content) as containers of its own, named molecule-<role>..., never one of the fleet's; it
converges the role there, converges again where the role changes the host (idempotence), verifies the
host's real state, and removes its containers and their volumes.

images and gate run on the control node, as site.yml runs them, and never contact their host. images
saves the CPU image to its archive in build/deploy/archives (the rollout's, so the 4 GB `docker save`
happens once per image ID) and records it in the scenario's own folder. gate runs the smoke suite
against a Triton server of its own (compose.yaml's triton-cpu as a one-off container of the compose
project molecule-gate, no port published), which its cleanup step removes. triton_service installs
Docker on its host, which copies, checks and loads that archive (no registry) and serves the tiny
model. The three need the CPU image: it is built first (`make image-cpu`, cached by content), so that
no scenario's time includes a cold build.

Measured on the CI machine kind, the images cached (the spread is other work on the machine):
triton_service 250 to 305 s (a 4 GB archive copied and loaded, then a CPU engine started),
container_runtime (a bookworm and a trixie host) 77 to 117 s, gate 77 to 112 s, images 48 to 57 s,
host_base 30 to 36 s, nvidia_driver and nvidia_container_toolkit 17 to 23 s each, gpu_facts 13 to 18 s,
validate 11 to 15 s; 10 to 13 minutes in all. A new CPU image adds its `docker save` (about a minute)
to the first of images and triton_service to run.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cpu_stack import make
from helpers import ROOT

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
FLEET = ROOT / "scripts" / "fleet"
ROLES_DIR = ROOT / "ansible" / "roles"
SCENARIO_ROLES = sorted(path.parts[-4] for path in ROLES_DIR.glob("*/molecule/default/molecule.yml"))
# What each suite's host image is named by in molecule.yml.
IMAGE_VARS = {"bookworm": "TRITONFLEET_FLEET_HOST_IMAGE", "trixie": "TRITONFLEET_FLEET_HOST_IMAGE_TRIXIE"}
# A cold image takes a debootstrap and a build (about a minute); a cached one under a second.
IMAGE_TIMEOUT = 900
# The scenarios that build, save, load or serve the CPU image.
CPU_IMAGE_ROLES = {"gate", "images", "triton_service"}
SCENARIO_TIMEOUT = 600
TAIL = 6000


@functools.cache
def _docker() -> None:
    """An engine that answers, as `make up` ensures one (scripts/docker-setup; fast when present)."""
    ready = make("docker")
    assert ready.returncode == 0, f"make docker failed:\n{ready.stdout[-2000:]}\n{ready.stderr[-2000:]}"


@functools.cache
def host_image(suite: str) -> str:
    """The fleet's host image of SUITE (built when missing): the last line `scripts/fleet image` prints."""
    _docker()
    done = subprocess.run(
        [str(FLEET), "image", suite], cwd=ROOT, capture_output=True, text=True, timeout=IMAGE_TIMEOUT
    )
    assert done.returncode == 0, f"scripts/fleet image {suite} failed:\n{done.stderr[-4000:]}"
    return done.stdout.splitlines()[-1]


@functools.cache
def cpu_image() -> None:
    """The CPU reference image, as `make up PROFILE=cpu` builds it (cached by content; cold, minutes)."""
    _docker()
    built = make("image-cpu")
    assert built.returncode == 0, f"make image-cpu failed:\n{built.stdout[-2000:]}\n{built.stderr[-4000:]}"


def molecule_test(role: str, env: dict[str, str]) -> tuple[int | None, str]:
    """`molecule test -s default` in the role's folder: its exit status (None past the timeout) and output.

    Its own process group, so that a timeout stops the ansible-playbook it runs as well; the containers
    it leaves then are removed by the next run's first step (destroy).
    """
    command = [str(BIN / "molecule"), "test", "-s", "default"]
    with subprocess.Popen(
        command,
        cwd=ROLES_DIR / role,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            output, _ = process.communicate(timeout=SCENARIO_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            return None, output
    return process.returncode, output


def test_each_role_with_a_scenario_is_collected():
    # A scenario folder renamed or lost would otherwise drop out of the parametrization unnoticed.
    expected = {
        "container_runtime",
        "gate",
        "gpu_facts",
        "host_base",
        "images",
        "nvidia_container_toolkit",
        "nvidia_driver",
        "triton_service",
        "validate",
    }
    assert expected <= set(SCENARIO_ROLES)


@pytest.mark.parametrize("role", SCENARIO_ROLES)
def test_the_role_passes_its_molecule_scenario(role: str):
    scenario = (ROLES_DIR / role / "molecule" / "default" / "molecule.yml").read_text()
    images = {var: host_image(suite) for suite, var in IMAGE_VARS.items() if f"${{{var}:" in scenario}
    if role in CPU_IMAGE_ROLES:
        cpu_image()
    env = {
        **os.environ,
        **images,
        # The venv's molecule, ansible-playbook and python: the tritonfleet_pin lookup and the action
        # plugins import tritonfleet.
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "NO_COLOR": "1",
        "PY_COLORS": "0",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
    }
    start = time.monotonic()
    code, output = molecule_test(role, env)
    took = time.monotonic() - start
    print(f"molecule test of {role}: exit {code} in {took:.0f} s")
    assert code is not None, (
        f"molecule test of {role} ran past {SCENARIO_TIMEOUT} s; its output ended:\n{output[-TAIL:]}"
    )
    assert code == 0, (
        f"molecule test of {role} exited {code} after {took:.0f} s; its output ended:\n{output[-TAIL:]}"
    )
