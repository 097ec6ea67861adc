"""Helpers for the CPU reference stack tests: where it listens, and how to start, stop and inspect it."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from helpers import ROOT

MODEL = "tiny-llama"
COMPOSE_PROJECT = "tritonfleet"
READY_TIMEOUT = 600  # seconds; a cold image build is not part of this, `make up` does it first


@dataclass(frozen=True)
class Stack:
    host: str
    http_port: int
    grpc_port: int
    metrics_port: int
    image: str
    repository: Path
    weights: Path

    @property
    def http(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def grpc(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def metrics(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"


def make(*targets: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *targets], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def compose_resources() -> dict[str, list[str]]:
    label = f"label=com.docker.compose.project={COMPOSE_PROJECT}"
    found = {}
    for kind in ("container", "network"):
        listing = ["docker", kind, "ls", "--quiet", "--filter", label] + (
            ["--all"] if kind == "container" else []
        )
        found[kind] = subprocess.run(listing, capture_output=True, text=True, check=True).stdout.split()
    return found


PROMPTS = ["The capital of France is", "Once upon a time, a small robot", "Hello, my name is"]
GREEDY = {"temperature": 0, "max_tokens": 24, "ignore_eos": True}


def compose_env() -> dict[str, str]:
    """The environment `make` gives docker compose, so tests run containers exactly as the stack does."""
    printed = make("-s", "compose-env", "PROFILE=cpu")
    assert printed.returncode == 0, printed.stderr
    pairs = (line.split("=", 1) for line in printed.stdout.splitlines() if "=" in line)
    return {**os.environ, **dict(pairs)}


def compose_run(
    command: list[str], volumes: dict[Path, str], stdin: str | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """A one-off triton-cpu container (the service's image, mounts, shm and limits) plus read-only mounts."""
    mounts = [arg for source, target in volumes.items() for arg in ("--volume", f"{source}:{target}:ro")]
    run = ["docker", "compose", "--profile", "cpu", "run", "--rm", "--no-deps", "-T", *mounts, "triton-cpu"]
    return subprocess.run(
        [*run, *command],
        cwd=ROOT,
        env=compose_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def container_health(service: str) -> str:
    label = f"label=com.docker.compose.service={service}"
    ids = subprocess.run(
        ["docker", "ps", "--quiet", "--filter", label], capture_output=True, text=True
    ).stdout.split()
    assert len(ids) == 1, f"expected one running {service} container, found {ids}"
    inspect = ["docker", "inspect", "--format", "{{.State.Health.Status}}", ids[0]]
    return subprocess.run(inspect, capture_output=True, text=True, check=True).stdout.strip()
