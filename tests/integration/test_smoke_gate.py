"""The smoke gate (`tritonfleet smoke`, `make smoke`) against the CPU stack and against deployments
broken on purpose: each must fail for the right reason, at the right check.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tritonfleet.serving.targets import Endpoint

from cpu_stack import MODEL, Stack, extra_server, free_port, make, signal_process, stack_container
from helpers import ROOT, dotenv

pytestmark = pytest.mark.integration

TOOL = Path(sys.prefix) / "bin" / "tritonfleet"
HOST_CHECKS = ["server_live", "server_ready", "repository_index", "repository_api_restricted"]
MODEL_CHECKS = [
    "model_ready", "model_contract", "generate", "generate_stream", "grpc_stream", "greedy_determinism",
    "stream_equals_nonstream", "max_tokens", "malformed_request", "metrics",
]  # fmt: skip
ADMIN_KEY = "admin-key=smoke-test-secret"


@dataclass
class Gate:
    code: int
    out: str
    err: str
    report: dict
    junit: ET.Element | None

    def host(self, name: str) -> dict:
        return next(h for h in self.report["hosts"] if h["name"] == name)

    def checks(self, name: str) -> dict[str, dict]:
        """A host's checks by label: `check` for host checks, `model/check` for model checks."""
        return {
            (f"{c['model']}/{c['check']}" if c["model"] else c["check"]): c for c in self.host(name)["checks"]
        }

    def failed(self, name: str) -> dict[str, str]:
        return {label: c["reason"] for label, c in self.checks(name).items() if c["outcome"] == "failed"}


def run_gate(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Gate:
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    done = subprocess.run(
        [TOOL, "smoke", *args, "--json", report, "--junit-xml", junit],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **(env or {})},
    )
    return Gate(
        done.returncode,
        done.stdout,
        done.stderr,
        json.loads(report.read_text()) if report.exists() else {},
        ET.parse(junit).getroot() if junit.exists() else None,
    )


def expected_labels(models: list[str]) -> list[str]:
    return HOST_CHECKS + [f"{model}/{check}" for model in models for check in MODEL_CHECKS]


# --- a healthy deployment ----------------------------------------------------------------------


def test_the_cpu_stack_passes_every_check(stack: Stack, tmp_path: Path):
    gate = run_gate(tmp_path, "--target", stack.endpoint.spec)
    assert gate.code == 0, gate.out + gate.err
    assert list(gate.checks("stack")) == expected_labels([MODEL])  # exactly these 14, in this order
    outcomes = {label: c["outcome"] for label, c in gate.checks("stack").items()}
    assert outcomes.pop("repository_api_restricted") == "skipped"
    assert set(outcomes.values()) == {"passed"}
    assert gate.checks("stack")["repository_api_restricted"]["reason"] == (
        "no admin key is configured and the model-repository API is open"
    )
    # One line per check, then the host's summary and the verdict.
    lines = gate.out.splitlines()
    assert sum(line.startswith(("PASS  stack  ", "SKIP  stack  ")) for line in lines) == 14
    assert lines[-1].startswith("smoke: PASSED: 1 host(s), 1 passed, 0 failed, 0 not checked; 14 checks")
    (suite,) = gate.junit.findall("testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures"), suite.get("skipped")) == (
        "stack",
        "14",
        "0",
        "1",
    )


def test_make_smoke_checks_an_inventory_group_of_two_hosts(stack: Stack, tmp_path: Path):
    # Two inventory names for the one server: the ports come from .env through make, as on a fleet.
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  children:\n    cpu_fleet:\n      hosts:\n"
        f"        cpu-1: {{ansible_host: {stack.host}}}\n"
        "        cpu-2: {ansible_host: localhost}\n"
    )
    done = make("smoke", "HOSTS=cpu_fleet", f"INVENTORY={inventory}", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((ROOT / "build" / "smoke" / "report.json").read_text())
    assert [(h["name"], h["status"], len(h["checks"])) for h in report["hosts"]] == [
        ("cpu-1", "passed", 14),
        ("cpu-2", "passed", 14),
    ]
    assert report["hosts"][1]["http"] == f"http://localhost:{dotenv()['TRITON_HTTP_PORT']}"
    suites = ET.parse(ROOT / "build" / "smoke" / "junit.xml").getroot().findall("testsuite")
    assert [(s.get("name"), s.get("tests")) for s in suites] == [("cpu-1", "14"), ("cpu-2", "14")]


def test_a_model_asked_for_but_not_served_fails_model_ready(stack: Stack, tmp_path: Path):
    gate = run_gate(tmp_path, "--target", stack.endpoint.spec, "--model", MODEL, "--model", "llama-9b")
    assert gate.code == 1
    assert list(gate.checks("stack")) == expected_labels([MODEL, "llama-9b"])
    failed = gate.failed("stack")
    assert failed["llama-9b/model_ready"] == "ABSENT: not in the repository index"
    assert {label.split("/")[0] for label in failed} == {"llama-9b"}  # tiny-llama still passes


# --- wrong ports -------------------------------------------------------------------------------


def test_wrong_grpc_and_metrics_ports_fail_exactly_the_checks_that_use_them(stack: Stack, tmp_path: Path):
    grpc, metrics = free_port(), free_port()
    url = f"{stack.http}?grpc={grpc}&metrics={metrics}"
    gate = run_gate(tmp_path, "--target", f"stack={url}")
    assert gate.code == 1
    failed = gate.failed("stack")
    assert set(failed) == {f"{MODEL}/grpc_stream", f"{MODEL}/stream_equals_nonstream", f"{MODEL}/metrics"}
    assert f"127.0.0.1:{grpc}" in failed[f"{MODEL}/grpc_stream"]
    assert "Connection refused" in failed[f"{MODEL}/grpc_stream"]
    assert failed[f"{MODEL}/metrics"] == f"metrics http://{stack.host}:{metrics}/metrics: connection refused"


def test_a_wrong_http_port_means_the_gate_could_not_run(stack: Stack, tmp_path: Path):
    port = free_port()
    gate = run_gate(tmp_path, "--target", f"stack=http://{stack.host}:{port}")
    assert gate.code == 2
    assert gate.host("stack")["status"] == "unreachable"
    assert f"FAIL  stack  unreachable: {stack.host}:{port}: connection refused" in gate.out


# --- broken deployments ------------------------------------------------------------------------


@pytest.fixture
def repository(stack: Stack, tmp_path: Path) -> Path:
    """A writable copy of the stack's rendered model repository."""
    copy = tmp_path / "models"
    shutil.copytree(stack.repository, copy)
    return copy


def test_a_model_that_did_not_load_fails_model_ready_with_the_load_error(repository: Path, tmp_path: Path):
    engine_file = repository / MODEL / "1" / "model.json"
    engine_args = json.loads(engine_file.read_text())
    engine_file.write_text(json.dumps({**engine_args, "frobnicate_the_cache": True}))
    flags = ("--model-control-mode=none", "--strict-readiness=true", "--exit-on-error=false")
    with extra_server("not-loaded", repository, *flags, wait_for="live") as server:
        gate = run_gate(tmp_path, "--target", server.spec)
    assert gate.code == 1
    assert list(gate.checks("not-loaded")) == expected_labels([MODEL])
    failed = gate.failed("not-loaded")
    assert failed[f"{MODEL}/model_ready"].startswith("UNAVAILABLE: ")
    assert "unknown engine argument(s) frobnicate_the_cache" in failed[f"{MODEL}/model_ready"]
    assert (
        failed["server_ready"]
        == f"live but not ready (GET /v2/health/ready is not 200); not ready: {MODEL} UNAVAILABLE"
    )
    assert "server_live" not in failed
    # Every check that needs the model says why it could not run, instead of timing out.
    assert failed[f"{MODEL}/generate"].startswith(f"model {MODEL} is not ready (UNAVAILABLE: ")


def test_a_server_live_but_not_ready_fails_server_ready(tmp_path: Path, stack: Stack):
    repository = tmp_path / "models"
    shutil.copytree(ROOT / "tests" / "fixtures" / "smoke" / "slow-loader", repository / "slow-loader")
    flags = ("--model-control-mode=explicit", "--strict-readiness=true")
    with extra_server("loading", repository, *flags, wait_for="ready") as server:
        # The load call blocks while the model loads; the server goes on loading after we stop waiting.
        with pytest.raises(requests.Timeout):
            requests.post(f"{server.http_url}/v2/repository/models/slow-loader/load", timeout=3)
        gate = run_gate(tmp_path, "--target", server.spec)
    assert gate.code == 1
    checks = gate.checks("loading")
    assert checks["server_live"]["outcome"] == "passed"
    assert checks["server_ready"]["reason"] == (
        "live but not ready (GET /v2/health/ready is not 200); not ready: slow-loader LOADING"
    )
    assert checks["slow-loader/model_ready"]["reason"] == "LOADING"


@pytest.fixture(scope="module")
def metrics_off(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    """tiny-llama with REPORT_CUSTOM_METRICS false, on a server whose repository API needs an admin key."""
    repository = tmp_path_factory.mktemp("metrics-off") / "models"
    shutil.copytree(stack.repository, repository)
    config = repository / MODEL / "config.pbtxt"
    text = config.read_text()
    switched = text.replace('string_value: "true"', 'string_value: "false"')
    assert switched != text
    config.write_text(switched)
    restricted = (
        f"--http-restricted-api=model-repository:{ADMIN_KEY}",
        f"--grpc-restricted-protocol=model-repository:{ADMIN_KEY}",
    )
    with extra_server("metrics-off", repository, "--model-control-mode=none", *restricted) as server:
        yield server


def test_metrics_turned_off_fails_only_the_metrics_check(metrics_off: Endpoint, tmp_path: Path):
    gate = run_gate(tmp_path, "--target", metrics_off.spec, env={"TRITONFLEET_ADMIN_KEY": ADMIN_KEY})
    assert gate.code == 1
    assert list(gate.checks("metrics-off")) == expected_labels([MODEL])
    assert gate.failed("metrics-off") == {
        f"{MODEL}/metrics": "vllm:prompt_tokens_total, vllm:generation_tokens_total, "
        "vllm:request_generation_tokens_count not exported for this model (is REPORT_CUSTOM_METRICS on?)"
    }
    # With the key, the restricted repository API is proven closed to callers without it.
    assert gate.checks("metrics-off")["repository_api_restricted"]["outcome"] == "passed"
    assert "smoke-test-secret" not in gate.out + gate.err + json.dumps(gate.report)


def test_without_the_admin_key_a_restricted_repository_cannot_be_listed(
    metrics_off: Endpoint, tmp_path: Path
):
    gate = run_gate(tmp_path, "--target", metrics_off.spec)
    assert gate.code == 1
    assert list(gate.checks("metrics-off")) == HOST_CHECKS  # no model is known, so no model check runs
    assert gate.failed("metrics-off") == {
        "repository_index": "HTTP repository index: 403: This API is restricted, expecting header 'admin-key'"
    }


def test_models_named_on_the_command_line_are_checked_without_the_index(
    metrics_off: Endpoint, tmp_path: Path
):
    gate = run_gate(tmp_path, "--target", metrics_off.spec, "--model", MODEL)
    assert gate.code == 1
    assert list(gate.checks("metrics-off")) == expected_labels([MODEL])
    assert set(gate.failed("metrics-off")) == {"repository_index", f"{MODEL}/metrics"}


# --- what the gate must be told, and a hung engine ---------------------------------------------


def test_an_expected_model_missing_from_the_index_fails_the_host(tmp_path: Path, stack: Stack):
    spec = f"stack=http://{stack.host}:{stack.http_port}?grpc={stack.grpc_port}&metrics={stack.metrics_port}"
    gate = run_gate(tmp_path, "--target", spec, "--expect-model", MODEL, "--expect-model", "llama-8b")
    assert gate.code == 1
    assert list(gate.checks("stack")) == expected_labels([MODEL, "llama-8b"])
    failed = gate.failed("stack")
    assert failed["llama-8b/model_ready"] == "ABSENT: expected, but not in the repository index"
    assert not [label for label in failed if label.startswith(f"{MODEL}/")]


def test_a_hung_engine_is_reported_as_not_answering_within_a_minute(tmp_path: Path, stack: Stack):
    spec = f"stack=http://{stack.host}:{stack.http_port}?grpc={stack.grpc_port}&metrics={stack.metrics_port}"
    container = stack_container()
    assert signal_process(container, "VLLM::EngineCore", "SIGSTOP")
    try:
        started = time.monotonic()
        gate = run_gate(tmp_path, "--target", spec)
        took = time.monotonic() - started
    finally:
        signal_process(container, "VLLM::EngineCore", "SIGCONT")
    assert gate.code == 1
    failed = gate.failed("stack")
    not_answering = f"model {MODEL}: engine not answering: no token in 25 s"
    assert failed[f"{MODEL}/generate"] == not_answering
    assert failed[f"{MODEL}/grpc_stream"] == not_answering
    assert took < 60, f"the gate took {took:.0f} s on a hung engine"
