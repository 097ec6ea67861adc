"""Helpers for the CPU reference stack tests: where it listens, and how to start, stop and inspect it."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tritonfleet.serving.readiness import wait_until_ok
from tritonfleet.serving.targets import Endpoint

from helpers import ROOT, dotenv

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
    def endpoint(self) -> Endpoint:
        return Endpoint("stack", self.host, self.http_port, self.grpc_port, self.metrics_port)

    @property
    def http(self) -> str:
        return self.endpoint.http_url

    @property
    def grpc(self) -> str:
        return self.endpoint.grpc_address


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def extra_server(name: str, repository: Path, *flags: str, wait_for: str = "ready") -> Iterator[Endpoint]:
    """A second tritonserver beside the stack (same image and mounts, ports of its own) serving
    `repository`, for deployments the smoke gate must fail. Removed on exit, whatever happened."""
    env = compose_env()
    address = dotenv()["TRITON_BIND_ADDRESS"]
    endpoint = Endpoint(name, address, free_port(), free_port(), free_port())
    publish = [
        arg
        for port in (endpoint.http_port, endpoint.grpc_port, endpoint.metrics_port)
        for arg in ("--publish", f"{address}:{port}:{port}")
    ]
    container = f"tritonfleet-smoke-{name}"
    subprocess.run(["docker", "rm", "--force", container], capture_output=True)
    command = [
        "docker", "compose", "--profile", "cpu", "run", "--detach", "--no-deps", "--name", container,
        *publish, "--volume", f"{repository}:/smoke-models:ro", "triton-cpu",
        "tritonserver", "--model-repository=/smoke-models", f"--http-port={endpoint.http_port}",
        f"--grpc-port={endpoint.grpc_port}", f"--metrics-port={endpoint.metrics_port}", *flags,
    ]  # fmt: skip
    try:
        started = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert started.returncode == 0, started.stderr
        url = f"{endpoint.http_url}/v2/health/{wait_for}"
        try:
            wait_until_ok(url, READY_TIMEOUT)
        except TimeoutError:
            log = subprocess.run(
                ["docker", "logs", "--tail", "40", container], capture_output=True, text=True
            )
            raise AssertionError(f"{container} never answered {url}:\n{log.stdout}{log.stderr}") from None
        yield endpoint
    finally:
        subprocess.run(["docker", "rm", "--force", container], capture_output=True)
