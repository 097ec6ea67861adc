"""Gate targets: URLs and Ansible inventories turned into HTTP, gRPC and metrics endpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tritonfleet.errors import InputError
from tritonfleet.serving.targets import PortDefaults, parse_target, parse_targets, targets_from_inventory


def test_a_bare_url_takes_tritons_port_layout():
    endpoint = parse_target("http://gpu-a1.example:9000")
    assert endpoint.name == "gpu-a1.example:9000"
    assert (endpoint.http_port, endpoint.grpc_port, endpoint.metrics_port) == (9000, 9001, 9002)
    assert endpoint.http_address == "gpu-a1.example:9000"
    assert endpoint.grpc_address == "gpu-a1.example:9001"
    assert endpoint.metrics_url == "http://gpu-a1.example:9002/metrics"


def test_name_query_and_defaults():
    named = parse_target("h1=http://10.0.0.7:8000?grpc=7001&metrics=7002")
    assert (named.name, named.host, named.grpc_port, named.metrics_port) == ("h1", "10.0.0.7", 7001, 7002)
    defaulted = parse_target("http://h2", PortDefaults(http=8000, grpc=18001, metrics=18002))
    assert (defaulted.http_port, defaulted.grpc_port, defaulted.metrics_port) == (8000, 18001, 18002)


def test_spec_parses_back_to_the_same_endpoint():
    for spec in ("h1=http://10.0.0.7:8000?grpc=7001&metrics=7002", "http://[::1]:8000", "http://h:1"):
        endpoint = parse_target(spec)
        assert parse_target(endpoint.spec) == endpoint


def test_ipv6_literal():
    endpoint = parse_target("http://[fd00::7]:8000")
    assert endpoint.host == "fd00::7"
    assert endpoint.grpc_address == "[fd00::7]:8001"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("gpu-a1:8000", "must start with http://"),
        ("https://gpu-a1:8000", "must start with http://"),
        ("http://:8000", "has no host"),
        ("http://gpu-a1", "has no port"),
        ("http://gpu-a1:99999", "not a URL"),
        ("http://gpu-a1:8000/v2", "give only http://HOST:PORT"),
        ("http://gpu-a1:8000?grcp=8001", "unknown query key 'grcp'"),
        ("http://gpu-a1:8000?grpc=eighty", "grpc: 'eighty' is not a TCP port"),
        ("http://gpu-a1:8000?metrics=0", "metrics: '0' is not a TCP port"),
        ("bad name=http://gpu-a1:8000", "is not a usable host name"),
    ],
)
def test_bad_targets_name_the_flag_and_the_target(spec: str, message: str):
    with pytest.raises(InputError) as raised:
        parse_target(spec)
    line = raised.value.line()
    assert line.startswith(f"--target: {spec}")
    assert message in line


def test_the_same_name_twice_is_refused():
    with pytest.raises(InputError, match="the same host name is given twice"):
        parse_targets(["http://h:8000", "http://h:8000"])


# --- inventories -----------------------------------------------------------------------------


def inventory_json(tmp_path: Path, text: str) -> dict:
    """What `ansible-inventory --list` makes of an inventory, as the CLI reads it."""
    path = tmp_path / "hosts.yml"
    path.write_text(text)
    tool = Path(sys.executable).parent / "ansible-inventory"
    done = subprocess.run([tool, "-i", path, "--list"], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


FLEET = """
all:
  children:
    gpu_fleet:
      children:
        canary:
          hosts:
            gpu-a1: {ansible_host: 10.0.0.1}
        spare:
          vars: {tritonfleet_http_port: 8000}
        main:
          hosts:
            gpu-a2: {ansible_host: 10.0.0.2, tritonfleet_http_port: 9000}
            gpu-a3: {tritonfleet_smoke_address: 10.9.9.3, ansible_host: 10.0.0.3, tritonfleet_grpc_port: 9101}
"""


def test_a_group_with_children_and_per_host_ports(tmp_path: Path):
    found = targets_from_inventory(
        inventory_json(tmp_path, FLEET), "gpu_fleet", PortDefaults(8000, 8001, 8002), "hosts.yml"
    )
    by_name = {e.name: e for e in found}
    assert list(by_name) == ["gpu-a1", "gpu-a2", "gpu-a3"]
    assert (by_name["gpu-a1"].host, by_name["gpu-a1"].http_port, by_name["gpu-a1"].grpc_port) == (
        "10.0.0.1",
        8000,
        8001,
    )
    # A host's own HTTP port wins; the command line's gRPC and metrics defaults still apply.
    assert (by_name["gpu-a2"].http_port, by_name["gpu-a2"].grpc_port) == (9000, 8001)
    assert (by_name["gpu-a3"].host, by_name["gpu-a3"].grpc_port) == ("10.9.9.3", 9101)


def test_without_defaults_grpc_and_metrics_sit_beside_the_http_port(tmp_path: Path):
    text = "all:\n  hosts:\n    gpu-b1: {tritonfleet_http_port: 9000}\n"
    found = targets_from_inventory(inventory_json(tmp_path, text), "all", PortDefaults(), "hosts.yml")
    assert [(e.name, e.host, e.http_port, e.grpc_port, e.metrics_port) for e in found] == [
        ("gpu-b1", "gpu-b1", 9000, 9001, 9002)
    ]


@pytest.mark.parametrize(
    ("group", "defaults", "message"),
    [
        ("gpu_flet", PortDefaults(8000), "hosts.yml: gpu_flet: no such group in the inventory"),
        ("canary", PortDefaults(), "hosts.yml: gpu-a1: tritonfleet_http_port: not set, and no --http-port"),
        ("spare", PortDefaults(8000), "hosts.yml: spare: the group has no hosts"),
    ],
)
def test_bad_inventory_lookups(tmp_path: Path, group: str, defaults: PortDefaults, message: str):
    with pytest.raises(InputError) as raised:
        targets_from_inventory(inventory_json(tmp_path, FLEET), group, defaults, "hosts.yml")
    assert raised.value.line().startswith(message)


def test_a_bad_port_variable_names_host_and_variable(tmp_path: Path):
    text = "all:\n  hosts:\n    gpu-b1: {tritonfleet_metrics_port: metrics}\n"
    with pytest.raises(InputError) as raised:
        targets_from_inventory(inventory_json(tmp_path, text), "all", PortDefaults(8000), "hosts.yml")
    assert raised.value.line() == (
        "hosts.yml: gpu-b1: tritonfleet_metrics_port: 'metrics' is not a TCP port (1-65535)"
    )
