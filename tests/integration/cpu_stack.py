"""Helpers for the CPU reference stack tests: where it listens, and how to start, stop and inspect it."""

from __future__ import annotations

import os
import socket
import subprocess
import time
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
    inspect = ["docker", "inspect", "--format", "{{.State.Health.Status}}", stack_container(service)]
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
            deadline = time.monotonic() + READY_TIMEOUT
            while True:  # a server that exits (a model that failed to load) ends the wait at once
                try:
                    wait_until_ok(url, 5)
                    break
                except TimeoutError:
                    if time.monotonic() > deadline or container_state(container)[0] != "running":
                        raise
        except TimeoutError:
            log = subprocess.run(["docker", "logs", container], capture_output=True, text=True)
            lines = (log.stdout + log.stderr).splitlines()
            errors = [line for line in lines if line.startswith("E") or "rror" in line][-20:]
            shown = "\n".join([*errors, "...", *lines[-10:]])
            raise AssertionError(f"{container} never answered {url}:\n{shown}") from None
        yield endpoint
    finally:
        subprocess.run(["docker", "rm", "--force", container], capture_output=True)


_SIGNAL_SCRIPT = """
import os, signal, sys
name, sig, parent = sys.argv[1], getattr(signal, sys.argv[2]), sys.argv[3]
hit = []
def argv(pid):
    return open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace").split("\\0")
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        ppid = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1]
        found = argv(pid)[0].strip() == name and parent in " ".join(argv(ppid))
    except OSError:
        continue
    if found:
        os.kill(int(pid), sig)
        hit.append(pid)
print(" ".join(hit))
"""


def signal_process(container: str, name: str, sig: str, parent: str = "") -> list[str]:
    """Send `sig` (SIGKILL, SIGSTOP, ...) to every process in `container` whose argv[0] is `name`
    (vLLM names its processes VLLM::EngineCore and VLLM::Worker) and whose parent's command line
    holds `parent` (a model's folder picks its engine); the PIDs signalled."""
    done = subprocess.run(
        ["docker", "exec", "-i", container, "python3", "-", name, sig, parent],
        input=_SIGNAL_SCRIPT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def stack_container(service: str = "triton-cpu") -> str:
    """The service's own container, not the one-off `compose run` servers beside it."""
    filters = [f"label=com.docker.compose.service={service}", "label=com.docker.compose.oneoff=False"]
    ids = subprocess.run(
        ["docker", "ps", "--quiet", *(arg for f in filters for arg in ("--filter", f))],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert len(ids) == 1, f"expected one running {service} container, found {ids}"
    return ids[0]


def container_state(container: str) -> tuple[str, int]:
    inspect = ["docker", "inspect", "--format", "{{.State.Status}} {{.RestartCount}}", container]
    status, restarts = subprocess.run(inspect, capture_output=True, text=True, check=True).stdout.split()
    return status, int(restarts)


def fill_shm(container: str) -> None:
    """Fill the container's /dev/shm to the last byte (remove /dev/shm/fill to give it back)."""
    script = (
        "f = open('/dev/shm/fill', 'wb')\n"
        "try:\n"
        "    while True:\n"
        "        f.write(bytes(1 << 20)); f.flush()\n"
        "except OSError:\n"
        "    pass\n"
    )
    subprocess.run(["docker", "exec", "-i", container, "python3", "-"], input=script, text=True, check=True)
