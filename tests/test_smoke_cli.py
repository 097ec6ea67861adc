"""`tritonfleet smoke` refuses bad targets, inventories and report paths in one line, exit 2, before any
host is contacted; and its reports are written whole, with the umask's permissions, or not at all.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tritonfleet import files
from tritonfleet.errors import InputError
from tritonfleet.gates import runner


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def no_host_contacted(monkeypatch: pytest.MonkeyPatch) -> None:
    def contacted(*args: object, **kwargs: object) -> None:
        raise AssertionError("a host was contacted")

    monkeypatch.setattr(runner, "run_gate", contacted)
    monkeypatch.setattr(runner, "run_host", contacted)


@pytest.fixture
def umask() -> Iterator[None]:
    before = os.umask(0o022)
    yield
    os.umask(before)


def refused(result, line: str) -> None:
    """One error line, exit 2, nothing on stdout (so no `smoke: checking` line)."""
    assert result.code == 2, result
    assert result.out == ""
    assert result.err.count("\n") == 1, result.err
    assert result.err.startswith(f"tritonfleet smoke: error: {line}"), result.err


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- report paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "path", "why"),
    [
        ("--json", "{tmp}/hostname/x.json", "{tmp}/hostname is not a directory"),
        ("--junit-xml", "{tmp}/hostname/deeper/x.xml", "{tmp}/hostname is not a directory"),
        ("--json", "{tmp}/reports", "it is a directory"),
        ("--json", "{tmp}/dangling/x.json", "{tmp}/dangling is a dangling symlink"),
    ],
    ids=["parent-is-a-file", "ancestor-is-a-file", "directory", "dangling-parent"],
)
def test_a_report_path_that_cannot_be_written_is_refused_first(
    cli, tmp_path: Path, no_host_contacted: None, flag: str, path: str, why: str
):
    (tmp_path / "hostname").write_text("gpu-a1\n")
    (tmp_path / "reports").mkdir()
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    before = listing(tmp_path)
    path, why = path.format(tmp=tmp_path), why.format(tmp=tmp_path)
    result = cli("smoke", "--target", f"http://127.0.0.1:{closed_port()}", flag, path)
    refused(result, f"{Path(path)}: cannot write the {flag} report: {why}")
    assert listing(tmp_path) == before  # no report, no temporary file


@pytest.mark.parametrize("name", ["reports/", "new-folder/"])
def test_a_report_path_ending_in_a_slash_names_a_folder_not_a_file(
    cli, tmp_path: Path, no_host_contacted: None, name: str
):
    (tmp_path / "reports").mkdir()
    before = listing(tmp_path)
    path = f"{tmp_path}/{name}"
    result = cli("smoke", "--target", "http://127.0.0.1:9", "--junit-xml", path)
    refused(result, f"argument --junit-xml: {path!r} ends with '/', so names a folder; give a file name")
    assert listing(tmp_path) == before  # not a file named new-folder


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
@pytest.mark.parametrize(
    ("path", "why"),
    [
        # Not writable even for root, whom os.access lets through a plain read-only directory.
        ("/proc/self/smoke.json", ": /proc/self is not writable"),
        ("/proc/smoke.json", " in /proc: "),
        ("/proc/tritonfleet/smoke.json", " in /proc: "),
    ],
)
def test_a_report_in_a_folder_nobody_can_write_is_refused_first(
    cli, no_host_contacted: None, path: str, why: str
):
    result = cli("smoke", "--target", "http://127.0.0.1:9", "--json", path)
    refused(result, f"{path}: cannot write the --json report{why}")
    assert not Path(path).exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory anyway")
def test_a_report_in_a_read_only_directory_is_refused_first(cli, tmp_path: Path, no_host_contacted: None):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        result = cli("smoke", "--target", "http://127.0.0.1:9", "--json", folder / "r.json")
    finally:
        folder.chmod(0o755)
    refused(result, f"{folder}/r.json: cannot write the --json report: {folder} is not writable")
    assert listing(folder) == []


@pytest.mark.parametrize(
    ("json_path", "junit_path"),
    [
        ("{tmp}/r.json", "{tmp}/r.json"),
        ("{tmp}/r.json", "{tmp}/./sub/../r.json"),
        ("{tmp}/r.json", "{tmp}/link.json"),
    ],
    ids=["same", "spelled-differently", "through-a-symlink"],
)
def test_one_file_for_both_reports_is_refused_first(
    cli, tmp_path: Path, no_host_contacted: None, json_path: str, junit_path: str
):
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.json").symlink_to(tmp_path / "r.json")
    before = listing(tmp_path)
    json_path, junit_path = json_path.format(tmp=tmp_path), junit_path.format(tmp=tmp_path)
    result = cli("smoke", "--target", "http://127.0.0.1:9", "--json", json_path, "--junit-xml", junit_path)
    refused(result, f"--json: {json_path}: is also the --junit-xml report; give two files")
    assert listing(tmp_path) == before


def test_a_report_over_the_inventory_is_refused_first(cli, tmp_path: Path, no_host_contacted: None):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    gpu-a1:\n")
    result = cli(
        "smoke", "--inventory", inventory, "--group", "all", "--http-port", "9", "--junit-xml", inventory
    )
    refused(result, f"--junit-xml: {inventory}: is the --inventory file; a report would overwrite it")
    assert inventory.read_text() == "all:\n  hosts:\n    gpu-a1:\n"


# --- reports: the umask's permissions, whole or not at all -----------------------------------------


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_write_atomic_gives_the_umasks_permissions(tmp_path: Path, umask: None, mask: int, mode: int):
    os.umask(mask)
    files.write_atomic(tmp_path / "r.json", "{}\n", "the --json report")
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == mode
    assert listing(tmp_path) == ["r.json"]


def test_the_gates_reports_get_the_umasks_permissions(cli, tmp_path: Path, umask: None):
    out = tmp_path / "out"
    result = cli("smoke", "--target", f"gone=http://127.0.0.1:{closed_port()}",
                 "--json", out / "r.json", "--junit-xml", out / "r.xml")  # fmt: skip
    assert result.code == 2  # the host was unreachable: the gate could not run, and says so in the reports
    assert "FAIL  gone  unreachable: " in result.out
    assert listing(out) == ["r.json", "r.xml"]
    assert [(out / name).stat().st_mode & 0o777 for name in ("r.json", "r.xml")] == [0o644, 0o644]


def test_runner_has_no_write_of_its_own():
    assert not hasattr(runner, "write_atomic")  # files.write_atomic is the one write


def _run_then(monkeypatch: pytest.MonkeyPatch, after) -> None:
    real = runner.run_gate

    def run_gate(*args, **kwargs):
        result = real(*args, **kwargs)
        after()
        return result

    monkeypatch.setattr(runner, "run_gate", run_gate)


def test_a_report_folder_that_became_a_file_during_the_run(cli, tmp_path: Path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    _run_then(monkeypatch, lambda: (out.rmdir(), out.write_text("not a folder")))
    result = cli("smoke", "--target", f"http://127.0.0.1:{closed_port()}", "--json", out / "r.json")
    assert result.code == 2
    assert result.err == (
        f"tritonfleet smoke: error: {out}/r.json: cannot write the --json report: {out} is not a directory\n"
    )
    assert listing(tmp_path) == ["out"]


@pytest.mark.parametrize("failing", ["fsync", "replace", "chmod"])
def test_a_failed_write_leaves_the_old_report_and_no_temporary_file(
    cli, tmp_path: Path, monkeypatch, failing
):
    report = tmp_path / "r.json"
    report.write_text("the last run's report\n")

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    targets = {"fsync": (os, "fsync"), "replace": (Path, "replace"), "chmod": (Path, "chmod")}
    _run_then(monkeypatch, lambda: monkeypatch.setattr(*targets[failing], full))
    result = cli("smoke", "--target", f"http://127.0.0.1:{closed_port()}", "--json", report)
    assert result.code == 2
    assert result.err == (
        f"tritonfleet smoke: error: {report}: cannot write the --json report: No space left on device\n"
    )
    assert report.read_text() == "the last run's report\n"
    assert listing(tmp_path) == ["r.json"]


# --- targets and ports through the command line -----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["http://h:0"],
            "--target: http://h:0: HTTP port '0' is not a TCP port (1-65535): port 0 is not usable",
        ),
        (["http://h:0", "--http-port", "8000"], "--target: http://h:0: HTTP port '0' is not a TCP port"),
        (["http://h:8000?grpc=99999"], "--target: http://h:8000?grpc=99999: grpc: '99999' is not a TCP port"),
        (["http://h:8000?metrics=-1"], "--target: http://h:8000?metrics=-1: metrics: '-1' is not a TCP port"),
        (["http://h", "--http-port", "99999"], "argument --http-port: '99999' is not a TCP port (1-65535)"),
        (["http://h", "--http-port", "-1"], "argument --http-port: '-1' is not a TCP port (1-65535)"),
        (["http://h", "--http-port=-1"], "argument --http-port: '-1' is not a TCP port (1-65535)"),
        (["http://h", "--http-port", "0"], "argument --http-port: '0' is not a TCP port (1-65535): port 0"),
        (["http://h", "--http-port", "+80"], "argument --http-port: '+80' is not a TCP port (1-65535)"),
        (["http://h", "--http-port", "8_000"], "argument --http-port: '8_000' is not a TCP port (1-65535)"),
        (["http://h", "--http-port", " 80"], "argument --http-port: ' 80' is not a TCP port (1-65535)"),
        (["http://h", "--grpc-port", "70000"], "argument --grpc-port: '70000' is not a TCP port (1-65535)"),
        (
            ["http://h", "--metrics-port", "\u0663"],
            "argument --metrics-port: '\u0663' is not a TCP port (1-65535)",
        ),
        (["http://h:65535"], "--target: http://h:65535: grpc: not given, and the HTTP port + 1 (65536)"),
        (["https://h:8443"], "--target: https://h:8443: must start with http://"),
        (
            ["http://h:8000", "--target", "http://h:8000"],
            "--target: h:8000: the same host name is given twice",
        ),
    ],
)
def test_bad_targets_and_ports(cli, no_host_contacted: None, args: list[str], line: str):
    refused(cli("smoke", "--target", *args), line)


def test_a_password_in_a_target_never_reaches_the_output(cli, no_host_contacted: None):
    result = cli("smoke", "--target", "gpu=http://:hunter2@gpu-a1:8000")
    refused(result, "--target: gpu=http://***@gpu-a1:8000: has user info (USER:PASSWORD@)")
    assert "hunter2" not in result.err


def test_an_admin_key_that_would_split_a_header_is_refused_unechoed(
    cli, monkeypatch, no_host_contacted: None
):
    monkeypatch.setenv("TRITONFLEET_ADMIN_KEY", "admin-key=hunter2\r\nX-Evil: 1")
    result = cli("smoke", "--target", "http://h:8000")
    refused(result, "TRITONFLEET_ADMIN_KEY: must be HEADER=VALUE")
    assert "hunter2" not in result.err and "Evil" not in result.err


# --- inventories through the command line -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "cause"),
    [
        ("hosts.yml", "all:\n  hosts: [unclosed\n", "did not find expected ',' or ']'"),
        (
            "hosts.yml",
            "all:\n  children:\n    fleet:\n      hosts:\n        a1: {x: 1\n",
            "expected ',' or '}'",
        ),
        ("hosts.ini", "[fleet]\ngpu-a1\ngpu-a2 tritonfleet_http_port\n", "got: tritonfleet_http_port"),
        ("hosts", "[fleet]\ngpu-a1 ansible_host=10.0.0.1 oops\n", "got: oops"),
    ],
    ids=["yaml-sequence", "yaml-mapping", "ini", "ini-no-suffix"],
)
def test_an_inventory_ansible_cannot_parse_gives_ansibles_reason(
    cli, tmp_path: Path, no_host_contacted: None, name: str, text: str, cause: str
):
    inventory = tmp_path / name
    inventory.write_text(text)
    result = cli("smoke", "--inventory", inventory, "--group", "fleet", "--http-port", "8000")
    refused(result, f"{inventory}: ansible-inventory could not parse it: ")
    assert cause in result.err
    assert "No inventory was parsed" not in result.err
    assert len(result.err) < 500


@pytest.mark.parametrize(
    ("text", "group", "line"),
    [
        (
            "all:\n  hosts:\n    gpu-a1: {tritonfleet_grpc_port: 70000}\n",
            "all",
            "gpu-a1: tritonfleet_grpc_port: 70000 is not a TCP port (1-65535)",
        ),
        (
            "all:\n  hosts:\n    gpu-a1: {tritonfleet_http_port: 0}\n",
            "all",
            "gpu-a1: tritonfleet_http_port: 0 is not a TCP port (1-65535): port 0 is not usable",
        ),
        (
            "all:\n  hosts:\n    gpu-a1: {ansible_host: '  '}\n",
            "all",
            "gpu-a1: ansible_host: ' ' is only whitespace",
        ),
        (
            "all:\n  children:\n    fleet:\n      hosts:\n        gpu-a1:\n",
            "flet",
            "flet: no such group in the inventory; did you mean fleet? (its groups: all, fleet, ungrouped)",
        ),
        (
            "[fleet]\ngpu-a1 ansible_host=10.0.0.1\ngpu-a2 ansible_host=10.0.0.1\n",
            "fleet",
            "gpu-a2: reaches the same server as gpu-a1 (10.0.0.1:8000)",
        ),
    ],
    ids=["grpc-port", "port-0", "blank-address", "group", "same-server"],
)
def test_bad_inventory_hosts(cli, tmp_path: Path, no_host_contacted: None, text: str, group: str, line: str):
    inventory = tmp_path / ("hosts.ini" if text.startswith("[") else "hosts.yml")
    inventory.write_text(text)
    result = cli("smoke", "--inventory", inventory, "--group", group, "--http-port", "8000")
    refused(result, f"{inventory}: {line}")


def test_a_report_to_a_device_writes_into_it_and_leaves_the_device_in_place(tmp_path: Path):
    write_atomic = files.write_atomic
    fifo = tmp_path / "reports.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        write_atomic(fifo, "{}\n", "the --json report")
        assert os.read(reader, 100) == b"{}\n"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still the pipe, not a file renamed over it
    with pytest.raises(InputError, match=r"^/dev/full: cannot write the --json report: No space left"):
        write_atomic(Path("/dev/full"), "{}\n", "the --json report")
    assert stat.S_ISCHR(Path("/dev/full").stat().st_mode)
    write_atomic(Path("/dev/null"), "{}\n", "the --json report")
    assert stat.S_ISCHR(Path("/dev/null").stat().st_mode)
