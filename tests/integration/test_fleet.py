"""The simulated fleet (scripts/fleet) the playbooks deploy to: real systemd hosts, a real TLS registry.

The module brings up two hosts made anew (bare) and takes the whole fleet down at its end; the last test
checks that `down` leaves nothing. Its images are cached by content, so after the first build this
module takes seconds.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator

import pytest
import requests

from fleet import (
    FLEET_JSON,
    ansible,
    container_ids,
    fleet,
    fleet_down,
    fleet_resources,
    fleet_up,
    host_exec,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sim() -> Iterator[dict]:
    try:
        yield fleet_up(2, fresh=True)
    finally:
        fleet_down()


def os_release(host: str) -> dict[str, str]:
    text = host_exec(host, "cat", "/etc/os-release").stdout
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key: value.strip('"') for key, value in pairs}


def test_hosts_boot_systemd_on_both_suites_and_are_bare(sim: dict):
    hosts = sim["hosts"]
    assert [(h["name"], h["suite"]) for h in hosts] == [("tf-host-1", "bookworm"), ("tf-host-2", "trixie")]
    for host in hosts:
        name = host["name"]
        assert host_exec(name, "systemctl", "is-system-running").stdout.strip() == "running"
        assert host_exec(name, "ps", "-o", "comm=", "-p", "1").stdout.strip() == "systemd"
        assert os_release(name)["VERSION_CODENAME"] == host["suite"]
        assert host_exec(name, "hostname").stdout.strip() == name
        # Bare: installing Docker is the playbooks' job.
        assert host_exec(name, "sh", "-c", "command -v docker dockerd", check=False).returncode != 0
        # Hosts find each other and the registry by name, at the addresses fleet.json gives.
        for other in [*hosts, sim["registry"]]:
            resolved = host_exec(name, "getent", "hosts", other["name"]).stdout.split()[0]
            assert resolved == other["address"]


def test_registry_answers_over_tls_with_the_fleet_ca_only(sim: dict):
    registry = sim["registry"]
    url = f"https://{registry['push_address']}/v2/"
    answer = requests.get(url, verify=registry["ca"], timeout=10)
    assert answer.status_code == 200, answer.text  # no auth: Debian's htpasswd block is gone
    assert answer.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    # The machine's own trust store (REQUESTS_CA_BUNDLE included) does not know the fleet's CA.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, timeout=10)
    # The certificate is also valid for the name the hosts pull by.
    context = ssl.create_default_context(cafile=registry["ca"])
    host, port = registry["push_address"].rsplit(":", 1)
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=registry["name"]) as tls,
    ):
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}
    assert registry["pull_address"] == f"{registry['name']}:{port}"


def test_inventory_lists_exactly_the_fleet(sim: dict):
    listed = ansible("ansible-inventory", "--list")
    assert listed.returncode == 0, listed.stderr
    inventory = json.loads(listed.stdout)
    hostvars = inventory["_meta"]["hostvars"]
    names = [h["name"] for h in sim["hosts"]]
    assert sorted(hostvars) == sorted([*names, "tf-registry"])
    assert sorted(inventory["sim_fleet"]["hosts"]) == names
    assert inventory["sim_registry"]["hosts"] == ["tf-registry"]
    assert inventory["suite_bookworm"]["hosts"] == ["tf-host-1"]
    assert inventory["suite_trixie"]["hosts"] == ["tf-host-2"]
    for host in sim["hosts"]:
        # --host, not --list's hostvars: --list shows values from Docker wrapped ({"__ansible_unsafe": ...}).
        shown = ansible("ansible-inventory", "--host", host["name"])
        assert shown.returncode == 0, shown.stderr
        facts = json.loads(shown.stdout)
        assert facts["ansible_connection"] == "community.docker.docker_api"
        assert facts["ansible_python_interpreter"] == "/usr/bin/python3"
        assert (facts["fleet_address"], facts["fleet_suite"]) == (host["address"], host["suite"])
    graph = ansible("ansible-inventory", "--graph")
    assert graph.returncode == 0, graph.stderr
    assert {line.strip(" |-") for line in graph.stdout.splitlines() if "@" not in line} == {
        *names,
        "tf-registry",
    }


def test_ansible_pings_every_host(sim: dict):
    pinged = ansible("ansible", "all", "-m", "ping")
    assert pinged.returncode == 0, pinged.stdout + pinged.stderr
    for name in [*(h["name"] for h in sim["hosts"]), "tf-registry"]:
        assert f"{name} | SUCCESS" in pinged.stdout


def test_second_up_keeps_the_running_hosts_and_their_state(sim: dict):
    before = container_ids()
    host_exec("tf-host-2", "sh", "-c", "echo deployed >/root/marker")
    again = fleet_up(2)
    assert container_ids() == before
    assert again == sim
    assert host_exec("tf-host-2", "cat", "/root/marker").stdout == "deployed\n"


BAD_USAGE = [["bogus"], [], ["up", "0"], ["up", "9"], ["up", "two"], ["up", "2", "3"], ["status", "x"]]


def snapshot() -> tuple[dict, dict, list[str]]:
    kept = sorted(p.name for p in FLEET_JSON.parent.iterdir()) if FLEET_JSON.parent.exists() else []
    return fleet_resources(), container_ids(), kept


@pytest.mark.parametrize("args", BAD_USAGE, ids=lambda args: " ".join(args) or "nothing")
def test_bad_usage_exits_2_with_one_line_and_changes_nothing(sim: dict, args: list[str]):
    before = snapshot()
    done = fleet(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("fleet: error: "), done.stderr
    assert snapshot() == before


def test_down_removes_everything_and_bad_usage_then_creates_nothing(sim: dict):
    status = fleet("status")
    assert status.returncode == 0
    assert [line.split()[:3] for line in status.stdout.splitlines()] == [
        ["tf-host-1", "bookworm", "running"],
        ["tf-host-2", "trixie", "running"],
        ["tf-registry", "bookworm", "running"],
    ]
    fleet_down()
    nothing = {"containers": [], "volumes": [], "networks": []}
    assert fleet_resources() == nothing
    assert not FLEET_JSON.parent.exists()
    fleet_down()  # idempotent
    for args in BAD_USAGE:
        assert fleet(*args).returncode == 2
    assert fleet_resources() == nothing
    assert not FLEET_JSON.parent.exists()
    assert fleet("status").stdout == ""
