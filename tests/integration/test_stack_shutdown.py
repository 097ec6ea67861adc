"""The stack stops gracefully and `make down` leaves nothing.

It stops the session's stack, so it is marked `stops_stack`: conftest.py runs it after every other test,
whatever the file names or the order pytest was given them in.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest
import requests

from cpu_stack import MODEL, PROMPTS, Stack, compose_resources, make

pytestmark = [pytest.mark.integration, pytest.mark.stops_stack]


def test_stop_is_graceful_and_down_leaves_no_container_or_network(stack: Stack):
    containers = compose_resources()["container"]
    assert len(containers) == 1, "the stack should be up before this test"
    # A request in flight when the stop begins is finished, not cut.
    longest = {"temperature": 0, "max_tokens": 480, "ignore_eos": True}
    body = {
        "text_input": PROMPTS[0],
        "sampling_parameters": json.dumps(longest),
        "return_num_output_tokens": True,
    }
    answers: list[requests.Response] = []
    url = f"{stack.http}/v2/models/{MODEL}/generate"
    # Connection: close, so that no idle keep-alive connection holds tritonserver's exit (it waits for
    # those up to its exit timeout, README "Stopping").
    close = {"Connection": "close"}
    inflight = threading.Thread(
        target=lambda: answers.append(requests.post(url, json=body, headers=close, timeout=120))
    )
    inflight.start()
    time.sleep(0.3)
    # SIGTERM reaches tritonserver through init; it unloads the model, whose finalize stops the engine.
    stop = subprocess.run(["docker", "stop", "--time", "60", containers[0]], capture_output=True, text=True)
    assert stop.returncode == 0, stop.stderr
    inflight.join(120)
    assert [a.status_code for a in answers] == [200], [a.text[:200] for a in answers]
    assert answers[0].json()["num_output_tokens"] == longest["max_tokens"]
    log = subprocess.run(["docker", "logs", containers[0]], capture_output=True, text=True).stderr
    assert f"vllm backend: {MODEL} v1 stopped" in log
    state = ["docker", "inspect", "--format", "{{.State.ExitCode}}", containers[0]]
    tail = "\n".join(line for line in log.splitlines() if "HTTP service connections" not in line)[-3000:]
    assert subprocess.run(state, capture_output=True, text=True, check=True).stdout.strip() == "0", tail
    stopped = make("down")
    assert stopped.returncode == 0, stopped.stderr
    assert compose_resources() == {"container": [], "network": []}
