"""The CPU reference stack for integration tests: `make up PROFILE=cpu` once per session, `make down` after.

Everything here talks to a real tritonserver running our vllm backend on a real vLLM engine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tritonfleet.serving.readiness import wait_until_ok

from cpu_stack import GREEDY, MODEL, PROMPTS, READY_TIMEOUT, Stack, compose_run, make
from helpers import ROOT, dotenv


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that stop the shared stack run last, in the order they were collected."""
    items.sort(key=lambda item: item.get_closest_marker("stops_stack") is not None)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    started = make("up", "PROFILE=cpu")
    assert started.returncode == 0, (
        f"make up PROFILE=cpu failed:\n{started.stdout[-4000:]}\n{started.stderr[-4000:]}"
    )
    env = dotenv()
    running = Stack(
        host=env["TRITON_BIND_ADDRESS"],
        http_port=int(env["TRITON_HTTP_PORT"]),
        grpc_port=int(env["TRITON_GRPC_PORT"]),
        metrics_port=int(env["TRITON_METRICS_PORT"]),
        image=(ROOT / "build" / "image-cpu.ref").read_text().strip(),
        repository=ROOT / "build" / "repo-cpu",
        weights=ROOT / "build" / "weights",
    )
    wait_until_ok(f"{running.http}/v2/health/ready", READY_TIMEOUT)
    yield running
    make("down")


@pytest.fixture(scope="session")
def reference(stack: Stack) -> dict[str, dict]:
    """vLLM's own greedy output for the prompts the tests send, from the same image and model.json."""
    request = {"prompts": PROMPTS, "sampling": GREEDY}
    volumes = {
        stack.repository / MODEL / "1" / "model.json": "/tmp/model.json",
        Path(__file__).parent / "offline_vllm.py": "/tmp/offline_vllm.py",
    }
    done = compose_run(
        ["python3", "/tmp/offline_vllm.py", "/tmp/model.json"], volumes, stdin=json.dumps(request)
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [
        json.loads(line[len("RESULT ") :]) for line in done.stdout.splitlines() if line.startswith("RESULT ")
    ]
    return {line["prompt"]: line for line in lines}
