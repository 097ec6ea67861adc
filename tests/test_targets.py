"""Gate targets: URLs and Ansible inventories turned into HTTP, gRPC and metrics endpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tritonfleet.errors import InputError
from tritonfleet.host import inventory
from tritonfleet.serving.targets import (
    PortDefaults,
    parse_model_names,
    parse_target,
    parse_targets,
    targets_from_inventory,
)


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
        ("http://gpu-a1:99999", "HTTP port '99999' is not a TCP port (1-65535)"),
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


# --- regressions: ports -----------------------------------------------------------------------------


@pytest.mark.parametrize("defaults", [PortDefaults(), PortDefaults(8000)])
def test_port_0_is_refused_as_port_0_never_taken_for_no_port(defaults: PortDefaults):
    for spec in ("http://h:0", "http://h:00"):
        with pytest.raises(InputError) as raised:
            parse_target(spec, defaults)
        line = raised.value.line()
        assert (
            line
            == f"--target: {spec}: HTTP port '{spec[9:]}' is not a TCP port (1-65535): port 0 is not usable"
        )
        assert "no port" not in line


def test_no_port_only_when_the_url_has_none():
    with pytest.raises(InputError, match="has no port and no default HTTP port was given"):
        parse_target("http://h")
    with pytest.raises(InputError, match=r"^--target: http://h:: has ':' but no port after it$"):
        parse_target("http://h:")
    assert parse_target("http://h", PortDefaults(9000)).http_port == 9000


@pytest.mark.parametrize(
    ("spec", "line"),
    [
        (
            "http://h:8000?grpc=99999",
            "--target: http://h:8000?grpc=99999: grpc: '99999' is not a TCP port (1-65535)",
        ),
        (
            "http://h:8000?metrics=-1",
            "--target: http://h:8000?metrics=-1: metrics: '-1' is not a TCP port (1-65535)",
        ),
        (
            "http://h:8000?grpc=0",
            "--target: http://h:8000?grpc=0: grpc: '0' is not a TCP port (1-65535): port 0 is not usable",
        ),
        ("http://h:99999", "--target: http://h:99999: HTTP port '99999' is not a TCP port (1-65535)"),
        ("http://h:-1", "--target: http://h:-1: HTTP port '-1' is not a TCP port (1-65535)"),
        ("http://h:+8000", "--target: http://h:+8000: HTTP port '+8000' is not a TCP port (1-65535)"),
        ("http://h:\u0663", "--target: http://h:\u0663: HTTP port '\u0663' is not a TCP port (1-65535)"),
        (
            "http://h:8000?grpc=\u0663",
            "--target: http://h:8000?grpc=\u0663: grpc: '\u0663' is not a TCP port (1-65535)",
        ),
        (
            "http://h:8000?grpc=\u00b2",
            "--target: http://h:8000?grpc=\u00b2: grpc: '\u00b2' is not a TCP port (1-65535)",
        ),
        (
            "http://h:8000?grpc=%38",
            "--target: http://h:8000?grpc=%38: grpc: '%38' is not a TCP port (1-65535)",
        ),
        ("http://h: 8000", "--target: http://h: 8000: HTTP port ' 8000' is not a TCP port (1-65535)"),
    ],
    ids=[
        "grpc-huge",
        "metrics-negative",
        "grpc-0",
        "http-huge",
        "http-negative",
        "plus",
        "arabic-digit",
        "grpc-arabic-digit",
        "superscript",
        "percent-encoded",
        "space",
    ],
)
def test_a_bad_port_names_its_own_kind(spec: str, line: str):
    with pytest.raises(InputError) as raised:
        parse_target(spec)
    assert raised.value.line() == line


def test_a_port_of_thousands_of_digits_is_refused_and_clipped():
    spec = "http://h:" + "9" * 5000
    with pytest.raises(InputError) as raised:
        parse_target(spec)
    line = raised.value.line()
    assert "is not a TCP port (1-65535)" in line
    assert len(line) < 500


@pytest.mark.parametrize(
    ("kind", "value", "line"),
    [
        ("http", 99999, "--http-port: 99999 is not a TCP port (1-65535)"),
        ("http", -1, "--http-port: -1 is not a TCP port (1-65535)"),
        ("grpc", 0, "--grpc-port: 0 is not a TCP port (1-65535): port 0 is not usable"),
        ("metrics", 70000, "--metrics-port: 70000 is not a TCP port (1-65535)"),
        ("http", True, "--http-port: True is not a TCP port (1-65535)"),
    ],
)
def test_port_defaults_are_checked_by_their_own_flag(kind: str, value: object, line: str):
    with pytest.raises(InputError) as raised:
        PortDefaults(**{kind: value})
    assert raised.value.line() == line


def test_the_top_http_port_blames_the_derived_port_and_says_why():
    with pytest.raises(InputError) as raised:
        parse_target("http://h:65535")
    assert raised.value.line() == (
        "--target: http://h:65535: grpc: not given, and the HTTP port + 1 (65536) is not a TCP port; "
        "give ?grpc=PORT or --grpc-port"
    )
    assert parse_target("http://h:65535?grpc=1&metrics=2").http_port == 65535
    with pytest.raises(
        InputError, match=r"^--target: http://h:65534\?grpc=1: metrics: not given, .* \(65536\)"
    ):
        parse_target("http://h:65534?grpc=1")


# --- regressions: user info, schemes and the other URL classes ---------------------------------------


@pytest.mark.parametrize(
    ("spec", "shown"),
    [
        ("http://:s3cret@gpu-a1:8000", "http://***@gpu-a1:8000"),
        ("http://admin:s3cret@gpu-a1:8000", "http://***@gpu-a1:8000"),
        ("http://s3cret@gpu-a1:8000", "http://***@gpu-a1:8000"),
        ("a1=http://u:s3cret@gpu-a1:8000", "a1=http://***@gpu-a1:8000"),
        ("http://u:s3/cret@gpu-a1:8000", "http://***@gpu-a1:8000"),  # a '/' the URL would split at
        ("http://u:s3c@ret@gpu-a1:8000", "http://***@gpu-a1:8000"),
        ("https://u:s3cret@gpu-a1:8000", "https://***@gpu-a1:8000"),
        ("u:s3cret@gpu-a1:8000", "***@gpu-a1:8000"),
    ],
)
def test_user_info_is_refused_without_echoing_the_secret(spec: str, shown: str):
    with pytest.raises(InputError) as raised:
        parse_target(spec)
    line = raised.value.line()
    assert "s3" not in line and "cret" not in line
    assert line == (
        f"--target: {shown}: has user info (USER:PASSWORD@): a target takes no credentials; give the admin "
        "key as HEADER=VALUE in $TRITONFLEET_ADMIN_KEY"
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("https://h:8000", "must start with http:// (the server's HTTP endpoint; https is not supported"),
        ("grpc://h:8001", "must start with http:// (the server's HTTP endpoint)"),
        ("http:/h:8000", "must start with http://"),
        ("h:8000", "must start with http://"),
        ("[::1]:8000", "must start with http://"),
        ("http://h:8000/v2/health", "has a path; give only http://HOST:PORT"),
        ("http://h:8000#models", "has a #fragment; give only http://HOST:PORT"),
        ("http://h:8000/#", "has a #fragment"),
        ("http://h:8000?grcp=8001", "unknown query key 'grcp' (expected grpc, metrics)"),
        ("http://h:8000?grpc=8001&grpc=9001", "query key 'grpc' is given twice"),
        ("http://h:8000?metrics=1&metrics=1", "query key 'metrics' is given twice"),
        ("http://h:8000?grpc", "query key 'grpc' has no =PORT"),
        ("http://h:8000?grpc=1&", "an empty query item (a stray '&')"),
        ("http://h:8000?grpc=1;metrics=2", "grpc: '1;metrics=2' is not a TCP port"),
        ("http://:8000", "has no host"),
        ("http://", "has no host"),
        ("http://[]:8000", "has no host"),
        ("http://::1:8000", "an IPv6 address goes in brackets: http://[ADDRESS]:PORT"),
        ("http://[::1:8000", "has '[' without ']'"),
        ("http://[::1]8000", "has '8000' after the IPv6 address"),
        ("http://[gpu-a1]:8000", "'gpu-a1' in brackets is not an IPv6 address"),
        ("http://[fe80::1%25eth0]:8000", "an IPv6 zone ID (%) is not taken"),
        ("http://gpu a1:8000", "'gpu a1' is not a host name or IP address"),
        ("http://gpu-a1 :8000", "'gpu-a1 ' is not a host name or IP address"),
        (
            "http://b\u00fccher.example:8000",
            "'b\u00fccher.example' is not an ASCII host name (give an IDN in its xn-- form)",
        ),
        ("http://-gpu:8000", "'-gpu' is not a host name or IP address"),
        ("http://gpu..a1:8000", "'gpu..a1' is not a host name or IP address"),
        ("http://999.0.0.1:8000", "'999.0.0.1' is not an IPv4 address"),
        ("http://10.1:8000", "'10.1' is not an IPv4 address"),
        ("http://8000", "'8000' is not an IPv4 address"),  # a port where the host goes
        ("a=b=http://h:8000", "'a=b' is not a usable host name"),
        ("=http://h:8000", "has '=' but no NAME before it"),
        ("a b=http://h:8000", "'a b' is not a usable host name"),
    ],
)
def test_url_classes(spec: str, message: str):
    with pytest.raises(InputError) as raised:
        parse_target(spec)
    line = raised.value.line()
    assert line.startswith(f"--target: {spec}: "), line
    assert message in line


@pytest.mark.parametrize(
    ("spec", "shown", "message"),
    [
        ("http://gpu\ta1:8000", "http://gpu\\ta1:8000", "'gpu\\ta1' is not a host name or IP address"),
        ("http://gpu-a1\n:8000", "http://gpu-a1\\n:8000", "'gpu-a1\\n' is not a host name or IP address"),
        ("http://gpu\x00:8000", "http://gpu\\x00:8000", "'gpu\\x00' is not a host name or IP address"),
        ("http://gpu\x1b[31m:8000", "http://gpu\\x1b[31m:8000", "is not a host name or IP address"),
        ("http://h:8000\n", "http://h:8000\\n", "HTTP port '8000\\n' is not a TCP port"),
        ("a1\n=http://h:8000", "a1\\n=http://h:8000", "'a1\\n' is not a usable host name"),
    ],
)
def test_control_characters_are_refused_and_shown_escaped(spec: str, shown: str, message: str):
    # urllib drops tabs and newlines anywhere in a URL: `http://gpu\ta1` would have become gpua1.
    with pytest.raises(InputError) as raised:
        parse_target(spec)
    line = raised.value.line()
    assert line.isprintable()
    assert line.startswith(f"--target: {shown}: ")
    assert message in line


@pytest.mark.parametrize(
    ("spec", "host", "ports", "name"),
    [
        ("http://[::1]:8000", "::1", (8000, 8001, 8002), "[::1]:8000"),
        ("http://[FD00:0::7]:9000/", "fd00::7", (9000, 9001, 9002), "[fd00::7]:9000"),
        ("HTTP://GPU-A1:8000", "gpu-a1", (8000, 8001, 8002), "gpu-a1:8000"),
        ("http://triton_cpu:8000?", "triton_cpu", (8000, 8001, 8002), "triton_cpu:8000"),
        ("http://h:08000", "h", (8000, 8001, 8002), "h:8000"),
        ("http://h:1?metrics=65535", "h", (1, 2, 65535), "h:1"),
        ("[::1]:8000=http://[::1]:8000", "::1", (8000, 8001, 8002), "[::1]:8000"),
        (
            "gpu-a1.example.=http://gpu-a1.example.:8000",
            "gpu-a1.example.",
            (8000, 8001, 8002),
            "gpu-a1.example.",
        ),
    ],
)
def test_good_url_forms(spec: str, host: str, ports: tuple[int, int, int], name: str):
    endpoint = parse_target(spec)
    assert (endpoint.name, endpoint.host) == (name, host)
    assert (endpoint.http_port, endpoint.grpc_port, endpoint.metrics_port) == ports
    assert parse_target(endpoint.spec) == endpoint


def test_two_names_of_one_server_are_taken_as_targets():
    # bench-smoke checks one stack under several names.
    found = parse_targets(["a=http://h:8000", "b=http://h:8000"])
    assert [e.name for e in found] == ["a", "b"]


# --- regressions: inventories -------------------------------------------------------------------------


def listing(hostvars: dict, **groups: dict) -> dict:
    """`ansible-inventory --list` JSON, written by hand for shapes an inventory file cannot easily give."""
    return {"_meta": {"hostvars": hostvars}, "all": {"children": ["ungrouped", *groups]}, **groups}


def one_host(**variables: object) -> dict:
    return listing({"gpu-a1": variables}, fleet={"hosts": ["gpu-a1"]})


def test_a_missing_group_lists_the_groups_there_are(tmp_path: Path):
    with pytest.raises(InputError) as raised:
        targets_from_inventory(inventory_json(tmp_path, FLEET), "gpu_flet", PortDefaults(8000), "hosts.yml")
    assert raised.value.line() == (
        "hosts.yml: gpu_flet: no such group in the inventory; did you mean gpu_fleet? "
        "(its groups: all, canary, gpu_fleet, main, spare, ungrouped)"
    )
    with pytest.raises(
        InputError, match=r"no such group in the inventory \(its groups: all, fleet, ungrouped\)$"
    ):
        targets_from_inventory(one_host(), "zzz", PortDefaults(8000), "hosts.yml")


def test_an_empty_group_and_a_group_of_empty_children(tmp_path: Path):
    text = "all:\n  children:\n    fleet:\n      children:\n        a: {}\n        b: {hosts: {}}\n"
    data = inventory_json(tmp_path, text)
    for group in ("fleet", "a", "b"):
        with pytest.raises(InputError, match=rf"^hosts.yml: {group}: the group has no hosts$"):
            targets_from_inventory(data, group, PortDefaults(8000), "hosts.yml")


def test_hosts_of_nested_children_are_included_once(tmp_path: Path):
    text = (
        "all:\n  children:\n    fleet:\n      hosts:\n        h0:\n      children:\n"
        "        rack1:\n          hosts:\n            h1:\n            h0:\n          children:\n"
        "            row1:\n              hosts:\n                h2:\n"
        "        rack2:\n          children:\n            row1:\n            row2:\n              hosts:\n"
        "                h3:\n"
    )
    found = targets_from_inventory(inventory_json(tmp_path, text), "fleet", PortDefaults(8000), "hosts.yml")
    assert [e.name for e in found] == ["h0", "h1", "h2", "h3"]


def test_a_cycle_of_child_groups_ends():
    data = {"a": {"children": ["b"], "hosts": ["h1"]}, "b": {"children": ["a"], "hosts": ["h2"]}}
    assert [e.name for e in targets_from_inventory(data, "a", PortDefaults(8000), "x")] == ["h1", "h2"]


@pytest.mark.parametrize(
    ("variables", "found"),
    [
        ({"tritonfleet_http_port": "9000"}, ("gpu-a1", 9000, 8001, 8002)),
        ({"tritonfleet_http_port": 9000, "tritonfleet_grpc_port": "9001"}, ("gpu-a1", 9000, 9001, 8002)),
        ({"ansible_host": "10.0.0.1"}, ("10.0.0.1", 8000, 8001, 8002)),
        ({"ansible_host": "fd00::1"}, ("fd00::1", 8000, 8001, 8002)),
        ({"ansible_host": "[fd00::1]"}, ("fd00::1", 8000, 8001, 8002)),
        (
            {"tritonfleet_smoke_address": "10.9.9.9", "ansible_host": "bad host"},
            ("10.9.9.9", 8000, 8001, 8002),
        ),
    ],
)
def test_good_host_variables(variables: dict, found: tuple):
    (endpoint,) = targets_from_inventory(
        one_host(**variables), "fleet", PortDefaults(8000, 8001, 8002), "h.yml"
    )
    assert (endpoint.host, endpoint.http_port, endpoint.grpc_port, endpoint.metrics_port) == found


@pytest.mark.parametrize(
    ("variables", "line"),
    [
        (
            {"tritonfleet_http_port": "abc"},
            "gpu-a1: tritonfleet_http_port: 'abc' is not a TCP port (1-65535)",
        ),
        (
            {"tritonfleet_http_port": ["8000"]},
            "gpu-a1: tritonfleet_http_port: a list is not a TCP port (1-65535)",
        ),
        ({"tritonfleet_http_port": {"port": 1}}, "gpu-a1: tritonfleet_http_port: a dict is not a TCP port"),
        ({"tritonfleet_http_port": True}, "gpu-a1: tritonfleet_http_port: True is not a TCP port (1-65535)"),
        (
            {"tritonfleet_http_port": 8000.0},
            "gpu-a1: tritonfleet_http_port: 8000.0 is not a TCP port (1-65535)",
        ),
        (
            {"tritonfleet_http_port": " 8000"},
            "gpu-a1: tritonfleet_http_port: ' 8000' is not a TCP port (1-65535)",
        ),
        (
            {"tritonfleet_http_port": 0},
            "gpu-a1: tritonfleet_http_port: 0 is not a TCP port (1-65535): port 0",
        ),
        ({"tritonfleet_http_port": None}, "gpu-a1: tritonfleet_http_port: is null; give a value or remove"),
        (
            {"tritonfleet_grpc_port": 70000},
            "gpu-a1: tritonfleet_grpc_port: 70000 is not a TCP port (1-65535)",
        ),
        (
            {"tritonfleet_metrics_port": -1},
            "gpu-a1: tritonfleet_metrics_port: -1 is not a TCP port (1-65535)",
        ),
        ({"tritonfleet_grpc_port": None}, "gpu-a1: tritonfleet_grpc_port: is null"),
        ({"ansible_host": ""}, "gpu-a1: ansible_host: is empty; give the host name or IP address"),
        (
            {"ansible_host": "   "},
            "gpu-a1: ansible_host: ' ' is only whitespace; give the host",
        ),
        ({"ansible_host": None}, "gpu-a1: ansible_host: is null"),
        ({"ansible_host": 10}, "gpu-a1: ansible_host: 10 is not a host name or IP address"),
        (
            {"ansible_host": "http://10.0.0.1"},
            "gpu-a1: ansible_host: 'http://10.0.0.1' is a URL; give the host",
        ),
        ({"ansible_host": "10.0.0.1:8000"}, "gpu-a1: ansible_host: '10.0.0.1:8000' is not a host name or IP"),
        ({"ansible_host": " 10.0.0.1"}, "gpu-a1: ansible_host: ' 10.0.0.1' is not a host name or IP address"),
        (
            {"ansible_host": "10.0.0.1\n"},
            "gpu-a1: ansible_host: '10.0.0.1\\n' is not a host name or IP address",
        ),
        ({"ansible_host": "b\u00fccher"}, "gpu-a1: ansible_host: 'b\u00fccher' is not an ASCII host name"),
        (
            {"tritonfleet_smoke_address": "", "ansible_host": "10.0.0.1"},
            "gpu-a1: tritonfleet_smoke_address: is empty",
        ),
    ],
)
def test_host_variables_of_the_wrong_type_or_form_name_host_and_variable(variables: dict, line: str):
    # A variable that is set is used or refused; it is never skipped for the next one or the default.
    with pytest.raises(InputError) as raised:
        targets_from_inventory(one_host(**variables), "fleet", PortDefaults(8000), "hosts.yml")
    assert raised.value.line().startswith(f"hosts.yml: {line}"), raised.value.line()


def test_the_top_http_port_in_an_inventory_blames_the_derived_variable():
    with pytest.raises(InputError) as raised:
        targets_from_inventory(one_host(tritonfleet_http_port=65535), "fleet", PortDefaults(), "hosts.yml")
    assert raised.value.line() == (
        "hosts.yml: gpu-a1: tritonfleet_grpc_port: not given, and the HTTP port + 1 (65536) is not a TCP "
        "port; give tritonfleet_grpc_port or --grpc-port"
    )


def test_two_hosts_that_reach_one_server_are_refused(tmp_path: Path):
    text = (
        "all:\n  hosts:\n    gpu-a1: {ansible_host: 10.0.0.1}\n    gpu-a2: {ansible_host: 10.0.0.1}\n"
        "    gpu-a3: {ansible_host: 10.0.0.1, tritonfleet_http_port: 9000}\n"
    )
    with pytest.raises(InputError) as raised:
        targets_from_inventory(inventory_json(tmp_path, text), "all", PortDefaults(8000), "hosts.yml")
    assert raised.value.line() == (
        "hosts.yml: gpu-a2: reaches the same server as gpu-a1 (10.0.0.1:8000); each inventory host must be "
        "a server of its own"
    )
    # The same address on another port is another server.
    text = (
        "all:\n  hosts:\n    a: {ansible_host: 10.0.0.1}\n"
        "    b: {ansible_host: 10.0.0.1, tritonfleet_http_port: 9000}\n"
    )
    found = targets_from_inventory(inventory_json(tmp_path, text), "all", PortDefaults(8000), "hosts.yml")
    assert [(e.name, e.http_port) for e in found] == [("a", 8000), ("b", 9000)]
    # A host named by its address, and another whose ansible_host is that address.
    data = listing({"b": {"ansible_host": "GPU-A1"}}, fleet={"hosts": ["gpu-a1", "b"]})
    with pytest.raises(InputError, match="b: reaches the same server as gpu-a1"):
        targets_from_inventory(data, "fleet", PortDefaults(8000), "hosts.yml")


@pytest.mark.parametrize(
    ("data", "line"),
    [
        ([], "x: not the JSON of ansible-inventory --list (not an object)"),
        ({"_meta": []}, "x: _meta: its hostvars are not an object"),
        ({"_meta": {"hostvars": []}}, "x: _meta: its hostvars are not an object"),
        ({"fleet": []}, "x: fleet: not an object in the inventory's JSON"),
        ({"fleet": {"hosts": "gpu-a1"}}, "x: fleet: its hosts are not a list of names"),
        ({"fleet": {"hosts": [1]}}, "x: fleet: its hosts are not a list of names"),
        ({"fleet": {"children": {"a": 1}}}, "x: fleet: its children are not a list of names"),
        (
            {"_meta": {"hostvars": {"h": []}}, "fleet": {"hosts": ["h"]}},
            "x: h: its hostvars are not an object",
        ),
        ({"fleet": {"hosts": ["bad name"]}}, "x: bad name: 'bad name' is not a usable host name"),
        ({"fleet": {"hosts": ["gpu\x1b"]}}, "x: gpu\\x1b: 'gpu\\x1b' is not a usable host name"),
    ],
)
def test_json_that_is_not_ansible_inventory_output(data: object, line: str):
    with pytest.raises(InputError) as raised:
        targets_from_inventory(data, "fleet", PortDefaults(8000), "x")  # type: ignore[arg-type]
    assert raised.value.line().startswith(line), raised.value.line()


# --- regressions: an inventory ansible-inventory cannot parse -----------------------------------------


def test_a_yaml_syntax_error_gives_the_yaml_error_and_where(tmp_path: Path):
    path = tmp_path / "hosts.yml"
    path.write_text("all:\n  hosts:\n    gpu-a1: {ansible_host: 10.0.0.1\n")
    with pytest.raises(InputError) as raised:
        inventory.read(path)
    line = raised.value.line()
    assert line.startswith(f"{path}: ansible-inventory could not parse it: ")
    assert "did not find expected ',' or '}'" in line
    assert "line 4" in line
    assert "No inventory was parsed" not in line
    assert len(line) < len(str(path)) + 320


def test_an_ini_inventory_with_a_bad_line_gives_the_offending_line(tmp_path: Path):
    path = tmp_path / "hosts.ini"
    path.write_text("[fleet]\ngpu-a1 tritonfleet_http_port=8000\ngpu-a2 ansible_host\n")
    with pytest.raises(InputError) as raised:
        inventory.read(path)
    line = raised.value.line()
    assert line.startswith(f"{path}: ansible-inventory could not parse it: ini plugin: ")
    assert "Expected key=value host variable assignment, got: ansible_host" in line


def test_a_yaml_inventory_of_the_wrong_shape_gives_the_yaml_plugins_reason(tmp_path: Path):
    path = tmp_path / "hosts.yaml"
    path.write_text("all:\n  hosts:\n    - gpu-a1\n")
    with pytest.raises(InputError) as raised:
        inventory.read(path)
    line = raised.value.line()
    assert line.startswith(f"{path}: ansible-inventory could not parse it: yaml plugin: ")
    assert 'Invalid "hosts" entry for "all" group, requires a dictionary' in line


def test_the_reason_from_older_ansible_stderr():
    # ansible-core before 2.19 puts each plugin's reason on one " * Failed to parse" line, wrapped.
    stderr = (
        "[WARNING]:  * Failed to parse /inv/hosts.yml with auto plugin: no root 'plugin' key found,\n"
        "'/inv/hosts.yml' is not a valid YAML inventory plugin config file\n"
        "[WARNING]:  * Failed to parse /inv/hosts.yml with yaml plugin: Syntax Error while loading YAML.\n"
        "did not find expected key  The error appears to be in '/inv/hosts.yml': line 3, column 5\n"
        "[WARNING]:  * Failed to parse /inv/hosts.yml with ini plugin: Invalid host pattern 'all:'\n"
        "[WARNING]: Unable to parse /inv/hosts.yml as an inventory source\n"
        "[ERROR]: No inventory was parsed, please check your configuration and options.\n"
    )
    assert inventory.failure_reason(stderr, Path("/inv/hosts.yml"), 1) == (
        "ansible-inventory could not parse it: yaml plugin: Syntax Error while loading YAML. did not find "
        "expected key The error appears to be in '/inv/hosts.yml': line 3, column 5"
    )
    assert inventory.failure_reason(stderr, Path("/inv/hosts"), 1) == (
        "ansible-inventory could not parse it: ini plugin: Invalid host pattern 'all:'"
    )
    long = "[WARNING]:  * Failed to parse /i with ini plugin: " + "x" * 2000
    assert len(inventory.failure_reason(long, Path("/i"), 1)) == inventory.REASON_CHARS


def test_a_failure_without_plugin_lines_gives_the_first_specific_line():
    stderr = "[WARNING]: Unable to parse /i as an inventory source\n[ERROR]: No inventory was parsed\n"
    assert inventory.failure_reason(stderr, Path("/i"), 1) == (
        "ansible-inventory failed: Unable to parse /i as an inventory source"
    )
    assert inventory.failure_reason("", Path("/i"), 5) == "ansible-inventory exit 5, and nothing on stderr"
    stderr = "Traceback (most recent call last):\n  File x\nModuleNotFoundError: No module named 'ansible'\n"
    assert inventory.failure_reason(stderr, Path("/i"), 1) == (
        "ansible-inventory failed: ModuleNotFoundError: No module named 'ansible'"
    )
    stderr = "[ERROR]: Unexpected Exception: boom\n"
    assert (
        inventory.failure_reason(stderr, Path("/i"), 250)
        == "ansible-inventory failed: Unexpected Exception: boom"
    )


# --- the models a host must serve -------------------------------------------------------------------


def test_expected_models_come_from_the_inventory_else_the_flag(tmp_path: Path):
    text = (
        "all:\n  hosts:\n"
        "    gpu-c1: {tritonfleet_http_port: 9000, tritonfleet_smoke_models: [llama-8b, qwen-7b, llama-8b]}\n"
        "    gpu-c2: {tritonfleet_http_port: 9100}\n"
    )
    found = targets_from_inventory(
        inventory_json(tmp_path, text), "all", PortDefaults(), "hosts.yml", ("tiny",)
    )
    assert [(e.name, e.expected) for e in found] == [
        ("gpu-c1", ("llama-8b", "qwen-7b")),
        ("gpu-c2", ("tiny",)),
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("llama-8b", "'llama-8b' is not a list of model names"),
        ("[llama-8b, 3]", "3 is not a model name"),
        ("['']", "'' is not a model name"),
        ("[' llama']", "' llama' is not a model name"),
        ("[a/b]", "'a/b' is not a model name"),
        ("null", "is null; give a value or remove the variable"),
    ],
)
def test_a_bad_models_variable_names_host_and_variable(tmp_path: Path, value: str, message: str):
    text = f"all:\n  hosts:\n    gpu-c1: {{tritonfleet_http_port: 9000, tritonfleet_smoke_models: {value}}}\n"
    with pytest.raises(InputError) as raised:
        targets_from_inventory(inventory_json(tmp_path, text), "all", PortDefaults(), "hosts.yml")
    assert raised.value.line() == f"hosts.yml: gpu-c1: tritonfleet_smoke_models: {message}"


def test_expect_model_flags_are_checked_like_the_variable():
    assert parse_model_names(["a", "b", "a"], "--expect-model", None) == ("a", "b")
    with pytest.raises(InputError) as raised:
        parse_model_names(["a/1"], "--expect-model", None)
    assert raised.value.line() == "--expect-model: 'a/1' is not a model name"
