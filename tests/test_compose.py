"""compose.yaml and .env: one host's stack as the issue and operators expect it, checked without Docker."""

from __future__ import annotations

import re

import pytest
import yaml

from helpers import ROOT, dotenv

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
ENV = dotenv()
SERVICES = COMPOSE["services"]


def seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)(s|m)", duration)
    assert match, duration
    return int(match[1]) * (60 if match[2] == "m" else 1)


def test_gpu_service_is_default_and_reserves_gpus():
    triton = SERVICES["triton"]
    assert "profiles" not in triton
    assert triton["image"].startswith("${TRITON_IMAGE:?")
    devices = triton["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]


def test_cpu_service_is_behind_its_profile():
    assert SERVICES["triton-cpu"]["profiles"] == ["cpu"]
    assert "deploy" not in SERVICES["triton-cpu"]


@pytest.mark.parametrize("name", ["triton", "triton-cpu"])
def test_service_runs_like_production(name):
    service = SERVICES[name]
    assert service["init"] is True
    assert service["restart"] == "unless-stopped"
    assert set(service["ulimits"]) == {"memlock", "stack"}
    assert service["shm_size"]
    models = next(v for v in service["volumes"] if v["target"] == "/models")
    assert models["read_only"] is True
    flags = service["command"]
    for flag in ("--model-control-mode=none", "--strict-readiness=true", "--disable-auto-complete-config",
                 "--model-load-thread-count=1"):  # fmt: skip
        assert flag in flags
    assert "/v2/health/ready" in " ".join(service["healthcheck"]["test"])


def test_ports_are_bound_to_the_configured_address_which_defaults_to_loopback():
    assert ENV["TRITON_BIND_ADDRESS"] == "127.0.0.1"
    for port in SERVICES["triton"]["ports"]:
        assert port.startswith("${TRITON_BIND_ADDRESS")


def test_grace_period_covers_tritons_exit_timeout():
    assert seconds(ENV["TRITON_STOP_GRACE_PERIOD"]) > int(ENV["TRITON_EXIT_TIMEOUT_SECS"])
    assert SERVICES["triton"]["stop_grace_period"] == "${TRITON_STOP_GRACE_PERIOD:?set in .env}"


def test_no_port_number_is_written_twice():
    # Ports live in .env only; everything else refers to them by name (tests may use them as data).
    ports = {ENV[k] for k in ("TRITON_HTTP_PORT", "TRITON_GRPC_PORT", "TRITON_METRICS_PORT")}
    paths = [ROOT / p for p in ("compose.yaml", "images/triton-vllm-cpu/Dockerfile", "Makefile", "README.md")]
    paths += [
        p
        for folder in ("src", "smoke", "bench", "scripts")
        for p in (ROOT / folder).rglob("*")
        if p.is_file()
    ]
    for path in paths:
        if path.suffix in (".json", ".pyc"):
            continue  # engine-argument data: numbers of their own
        text = path.read_text(errors="replace")
        assert not [p for p in ports if re.search(rf"\b{p}\b", text)], path
