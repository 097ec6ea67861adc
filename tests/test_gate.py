"""`tritonfleet smoke` without a Triton server: bad arguments, hosts it cannot reach, a web server that
is not Triton, and the reports. The gate against real servers is in tests/integration/test_smoke_gate.py.
"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import json
import socket
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from tritonfleet.gates import runner as gate
from tritonfleet.gates import smoke
from tritonfleet.serving import triton
from tritonfleet.serving.targets import parse_target
from tritonfleet.serving.triton import IndexEntry

# A host whose repository index cannot be read gets the four host checks and no model check.
HOST_CHECKS = ["server_live", "server_ready", "repository_index", "repository_api_restricted"]


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A plain HTTP file server: it answers, but it is not Triton."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path_factory.mktemp("www")))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def silent_server() -> Iterator[str]:
    """Takes connections and never answers: only timeouts stop a client that waits on it."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    for connection in held:
        connection.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def reports(tmp_path: Path) -> list[str]:
    return [
        "--json",
        str(tmp_path / "out" / "report.json"),
        "--junit-xml",
        str(tmp_path / "out" / "junit.xml"),
    ]


def test_a_web_server_that_is_not_triton_fails_the_host_checks(cli, tmp_path: Path, web_server: str):
    result = cli("smoke", "--target", f"web={web_server}", *reports(tmp_path))
    assert result.code == 1, result.err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (host,) = report["hosts"]
    assert host["status"] == "failed"
    assert [c["check"] for c in host["checks"]] == HOST_CHECKS
    by_check = {c["check"]: c for c in host["checks"]}
    assert by_check["server_live"]["outcome"] == "failed"
    assert "not a Triton server" in by_check["server_live"]["reason"]
    assert by_check["server_ready"]["reason"].startswith("neither live nor ready")
    assert "not Triton's JSON" in by_check["repository_index"]["reason"]
    # The refusal check must not mistake a server that is not Triton for a locked-down one.
    assert by_check["repository_api_restricted"]["outcome"] == "failed"
    assert "FAIL  web  server_live" in result.out
    assert result.out.rstrip().splitlines()[-1].startswith("smoke: FAILED: 1 host(s), 0 passed, 1 failed")


def test_an_unreachable_host_means_the_gate_could_not_run(cli, tmp_path: Path, web_server: str):
    port = closed_port()
    result = cli("smoke", "--target", f"web={web_server}", "--target", f"gone=http://127.0.0.1:{port}",
                 *reports(tmp_path))  # fmt: skip
    assert result.code == 2
    assert f"FAIL  gone  unreachable: 127.0.0.1:{port}: connection refused" in result.out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["exit_code"] == 2
    assert [(h["name"], h["status"], len(h["checks"])) for h in report["hosts"]] == [
        ("web", "failed", 4),
        ("gone", "unreachable", 0),
    ]
    suites = ET.parse(tmp_path / "out" / "junit.xml").getroot().findall("testsuite")
    assert [(s.get("name"), s.get("tests")) for s in suites] == [("web", "4"), ("gone", "1")]
    assert suites[1].find("testcase/error").get("message").startswith("unreachable: 127.0.0.1:")


def test_a_server_that_never_answers_fails_every_check_on_the_call_timeout(
    cli, tmp_path: Path, silent_server
):
    result = cli("smoke", "--target", f"mute={silent_server}", "--call-timeout", "1", *reports(tmp_path))
    assert result.code == 1
    (host,) = json.loads((tmp_path / "out" / "report.json").read_text())["hosts"]
    assert host["status"] == "failed"  # finished by the call timeouts, not by the host backstop
    assert [c["check"] for c in host["checks"]] == HOST_CHECKS
    assert all(c["outcome"] == "failed" and "timed out" in c["reason"] for c in host["checks"]), host


def test_the_host_backstop_stops_a_run_that_outlasts_it(cli, tmp_path: Path, silent_server):
    args = ("--target", f"mute={silent_server}", "--call-timeout", "5", "--host-timeout", "3")
    result = cli("smoke", *args, *reports(tmp_path))
    assert result.code == 2
    assert "FAIL  mute  the suite did not finish in 3 s" in result.out
    (host,) = json.loads((tmp_path / "out" / "report.json").read_text())["hosts"]
    assert host["status"] == "error"


@pytest.mark.parametrize(("hosts", "parallel", "overlap"), [(6, 6, True), (3, 1, False)])
def test_hosts_run_at_once_up_to_the_parallel_limit(
    web_server: str, hosts: int, parallel: int, overlap: bool
):
    endpoints = [parse_target(f"w{i}={web_server}") for i in range(hosts)]
    result = gate.run_gate(endpoints, gate.Options(suite=gate.default_suite(), parallel=parallel))
    assert [h.endpoint.name for h in result.hosts] == [e.name for e in endpoints]
    assert [len(h.checks) for h in result.hosts] == [4] * hosts
    # Every host's run overlaps every other's exactly when they all ran at once.
    last_start = max(h.started for h in result.hosts)
    first_end = min(h.started + h.seconds for h in result.hosts)
    assert (last_start < first_end) is overlap


def test_lines_and_summary_from_a_result():
    endpoint = parse_target("h1=http://10.0.0.1:8000")
    host = gate.HostResult(
        endpoint,
        gate.FAILED,
        2.5,
        [
            gate.Check("h1", "", "server_live", "passed", 0.01),
            gate.Check("h1", "m", "metrics", "failed", 0.3, "vllm:prompt_tokens_total not exported"),
            gate.Check("h1", "", "repository_api_restricted", "skipped", 0.0, "no admin key"),
        ],
    )
    assert gate.host_lines(host) == [
        "PASS  h1  server_live                  0.01 s",
        "FAIL  h1  m/metrics                    0.30 s  vllm:prompt_tokens_total not exported",
        "SKIP  h1  repository_api_restricted    0.00 s  no admin key",
    ]
    assert gate.host_summary(host) == "h1: failed: 3 checks (1 passed, 1 failed, 1 skipped) in 2.5 s"


# --- bad arguments: one line, exit 2, no report written --------------------------------------


INVENTORY = "all:\n  children:\n    fleet:\n      hosts:\n        gpu-a1: {tritonfleet_http_port: 8000}\n"


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        ([], {}, "--target: give at least one --target"),
        (["--target", "ftp://h:8000"], {}, "--target: ftp://h:8000: must start with http://"),
        (["--target", "http://h:8000", "--inventory", "{inv}", "--group", "fleet"], {}, "--target: give"),
        (["--inventory", "{tmp}/nope.yml", "--group", "fleet"], {}, "{tmp}/nope.yml: no such inventory"),
        (["--inventory", "{inv}", "--group", "flet"], {}, "{inv}: flet: no such group in the inventory"),
        (["--inventory", "{inv}"], {}, "--group: required with --inventory"),
        (["--group", "fleet"], {}, "--group: only with --inventory"),
        (
            ["--inventory", "{bad_inv}", "--group", "fleet"],
            {},
            "{bad_inv}: ansible-inventory could not parse it: ",
        ),
        (
            ["--target", "http://h:8000", "--call-timeout", "0"],
            {},
            "argument --call-timeout: 0 is outside (0,",
        ),
        (["--target", "http://h:8000", "--parallel", "0"], {}, "argument --parallel: 0 is outside [1,"),
        (["--target", "http://h:8000", "--suite", "{tmp}"], {}, "{tmp}: not the smoke suite"),
        (
            ["--target", "http://h:8000"],
            {"TRITONFLEET_ADMIN_KEY": "s3cret"},
            "TRITONFLEET_ADMIN_KEY: must be",
        ),
    ],
    ids=[
        "no-target",
        "scheme",
        "both",
        "inventory-missing",
        "group-missing",
        "group-unset",
        "group-alone",
        "broken-inventory",
        "timeout",
        "parallel",
        "suite",
        "admin-key",
    ],
)
def test_bad_arguments(cli, tmp_path: Path, monkeypatch, args: list[str], env: dict[str, str], line: str):
    inventory, broken = tmp_path / "hosts.yml", tmp_path / "broken.yml"
    inventory.write_text(INVENTORY)
    broken.write_text("all:\n  hosts: [unclosed\n")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    fill = {"inv": inventory, "bad_inv": broken, "tmp": tmp_path}
    result = cli("smoke", *(a.format(**fill) for a in args), *reports(tmp_path))
    assert result.code == 2
    assert result.out == ""
    assert result.err.count("\n") == 1, result.err
    assert result.err.startswith(f"tritonfleet smoke: error: {line.format(**fill)}"), result.err
    assert "s3cret" not in result.err
    assert not (tmp_path / "out").exists()


def test_a_flag_of_the_wrong_type_is_a_usage_error(cli, tmp_path: Path):
    result = cli("smoke", "--target", "http://h:8000", "--call-timeout", "soon", *reports(tmp_path))
    assert result.code == 2
    assert "--call-timeout: 'soon' is not a number" in result.err
    assert not (tmp_path / "out").exists()


def test_each_host_passes_its_own_expected_models_to_the_suite(tmp_path: Path):
    endpoint = dataclasses.replace(parse_target("h1=http://10.0.0.7:8000"), expected=("llama-8b", "qwen-7b"))
    command = gate.suite_command(endpoint, gate.Options(suite=tmp_path), tmp_path / "r", tmp_path / "j")
    flags = [command[i + 1] for i, arg in enumerate(command) if arg == "--expect-model"]
    assert flags == ["llama-8b", "qwen-7b"]


def test_an_expected_model_the_index_lacks_is_checked_as_absent(monkeypatch):
    listed = [IndexEntry("tiny-llama", "1", "READY", "")]
    monkeypatch.setattr(triton, "repository_index", lambda *args, **kwargs: listed)
    endpoint = parse_target("h1=http://10.0.0.7:8000")
    settings = smoke.Settings([endpoint], [], 5.0, None, expected=["tiny-llama", "llama-8b"])
    found = smoke.discover(settings, endpoint).models
    assert [(entry.name, entry.state) for entry in found] == [("tiny-llama", "READY"), ("llama-8b", "ABSENT")]
    assert found[1].reason == "expected, but not in the repository index"


def test_the_suite_runs_without_the_plugins_installed_beside_it(monkeypatch, tmp_path: Path):
    # A dev environment's pytest plugins (hypothesis, anyio, ...) add a second per host to every gate.
    seen: dict[str, str] = {}

    def fake_run(command, **kwargs):
        seen.update(kwargs["env"])
        return gate.subprocess.CompletedProcess(command, 4, "", "no tests ran")

    monkeypatch.setattr(gate.triton, "reachable", lambda *args, **kwargs: "")
    monkeypatch.setattr(gate.subprocess, "run", fake_run)
    result = gate.run_host(parse_target("h1=http://10.0.0.7:8000"), gate.Options(suite=tmp_path))
    assert seen["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] == "1"
    assert result.status == gate.ERROR
