"""The smoke gate's front door: the smoke/ suite run against many hosts at once, and its reports.

Each host gets a pytest process of its own, so hosts are checked in parallel and a host that hangs or
crashes its run cannot touch another host's results. A host whose HTTP port takes no connection is not
checked at all: the gate could not run there, which is exit code 2, not a failed check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tritonfleet import __version__
from tritonfleet.pins import versions
from tritonfleet.serving import triton
from tritonfleet.serving.targets import (
    ADMIN_KEY_ENV,
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_HOST_TIMEOUT,
    DEFAULT_PARALLEL,
    Endpoint,
)

EXIT_PASSED, EXIT_FAILED, EXIT_NOT_RUN = 0, 1, 2
# What one host's run came to. `unreachable` and `error` mean the gate could not check the host.
PASSED, FAILED, UNREACHABLE, ERROR = "passed", "failed", "unreachable", "error"
MARKS = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}


def default_suite() -> Path:
    """$TRITONFLEET_ROOT/smoke when set, else the suite shipped in the package (smoke/ of its checkout)."""
    root = versions.checkout_root()
    if root is not None:
        return root / "smoke"
    return Path(__file__).parent / "suite"  # package data, a plain folder (wheels install unzipped)


@dataclass(frozen=True)
class Options:
    suite: Path
    models: Sequence[str] = ()
    call_timeout: float = DEFAULT_CALL_TIMEOUT  # any one network call
    host_timeout: float = DEFAULT_HOST_TIMEOUT
    connect_timeout: float = 5.0
    parallel: int = DEFAULT_PARALLEL
    admin_key: str | None = None  # HEADER=VALUE, handed to the suite through its environment


@dataclass(frozen=True)
class Check:
    host: str
    model: str
    check: str
    outcome: str  # passed | failed | skipped
    seconds: float
    reason: str = ""

    @property
    def label(self) -> str:
        return f"{self.model}/{self.check}" if self.model else self.check


@dataclass
class HostResult:
    endpoint: Endpoint
    status: str
    seconds: float
    checks: list[Check] = field(default_factory=list)
    detail: str = ""  # why the gate could not run here
    junit: str = ""  # the host's JUnit XML
    started: float = field(default_factory=time.monotonic)

    def count(self, outcome: str) -> int:
        return sum(check.outcome == outcome for check in self.checks)


@dataclass
class GateResult:
    hosts: list[HostResult]
    started: datetime
    seconds: float

    @property
    def exit_code(self) -> int:
        if any(host.status in (UNREACHABLE, ERROR) for host in self.hosts):
            return EXIT_NOT_RUN
        return EXIT_FAILED if any(host.status == FAILED for host in self.hosts) else EXIT_PASSED


# --- running ---------------------------------------------------------------------------------


def suite_command(endpoint: Endpoint, options: Options, results: Path, junit: Path) -> list[str]:
    command = [
        sys.executable, "-m", "pytest", str(options.suite),
        "-c", str(options.suite / "pytest.ini"), "--rootdir", str(options.suite),
        "-q", "--no-header", "-p", "no:cacheprovider",
        "--target", endpoint.spec,
        "--call-timeout", f"{options.call_timeout:g}",
        "--results", str(results),
        "--junitxml", str(junit), "-o", f"junit_suite_name={endpoint.name}",
    ]  # fmt: skip
    for model in options.models:
        command += ["--model", model]
    for model in endpoint.expected:
        command += ["--expect-model", model]
    return command


def _read_checks(path: Path) -> list[Check]:
    if not path.exists():
        return []
    return [Check(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _tail(text: str, lines: int = 3) -> str:
    kept = [line for line in text.splitlines() if line.strip()][-lines:]
    return triton.one_line(" | ".join(kept), 400)


def run_host(endpoint: Endpoint, options: Options) -> HostResult:
    start = time.monotonic()

    def result(status: str, checks: list[Check], detail: str = "", junit: str = "") -> HostResult:
        return HostResult(endpoint, status, time.monotonic() - start, checks, detail, junit, started=start)

    unreachable = triton.reachable(endpoint, options.connect_timeout)
    if unreachable:
        return result(UNREACHABLE, [], f"unreachable: {unreachable}")
    # Only the suite's own conftest: plugins that happen to be installed beside tritonfleet (a dev
    # environment's hypothesis, anyio, ...) would cost a second of startup per host and could change
    # how the checks run.
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop(ADMIN_KEY_ENV, None)
    if options.admin_key:
        env[ADMIN_KEY_ENV] = options.admin_key
    with tempfile.TemporaryDirectory(prefix="tritonfleet-smoke-") as scratch:
        results, junit = Path(scratch) / "results.jsonl", Path(scratch) / "junit.xml"
        command = suite_command(endpoint, options, results, junit)
        try:
            run = subprocess.run(
                command, capture_output=True, text=True, env=env, timeout=options.host_timeout
            )
        except subprocess.TimeoutExpired:
            return result(
                ERROR, _read_checks(results), f"the suite did not finish in {options.host_timeout:g} s"
            )
        checks = _read_checks(results)
        junit_text = junit.read_text(encoding="utf-8") if junit.exists() else ""
    if run.returncode in (0, 1) and checks:
        failed = run.returncode == 1 or any(check.outcome == "failed" for check in checks)
        return result(FAILED if failed else PASSED, checks, junit=junit_text)
    detail = f"the suite could not run (pytest exit {run.returncode}): {_tail(run.stderr or run.stdout)}"
    return result(ERROR, checks, detail, junit_text)


def run_gate(
    endpoints: Sequence[Endpoint], options: Options, on_host: Callable[[HostResult], None] = lambda _: None
) -> GateResult:
    """Every host at once (up to options.parallel); on_host hears of each host as it finishes."""
    started, start = datetime.now(UTC), time.monotonic()

    def one(endpoint: Endpoint) -> HostResult:
        result = run_host(endpoint, options)
        on_host(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, min(options.parallel, len(endpoints)))) as pool:
        hosts = list(pool.map(one, endpoints))
    return GateResult(hosts, started, time.monotonic() - start)


# --- reporting -------------------------------------------------------------------------------


def host_lines(host: HostResult) -> list[str]:
    """One line per check: mark, host, check, duration and, unless it passed, the reason."""
    name = host.endpoint.name
    if host.status == UNREACHABLE:
        return [f"FAIL  {name}  {host.detail}"]
    width = max((len(c.label) for c in host.checks), default=0)
    lines = []
    for check in host.checks:
        mark = MARKS.get(check.outcome, check.outcome.upper())
        line = f"{mark}  {name}  {check.label:<{width}}  {check.seconds:6.2f} s"
        lines.append(f"{line}  {check.reason}" if check.reason else line)
    if host.status == ERROR:
        lines.append(f"FAIL  {name}  {host.detail}")
    return lines


def host_summary(host: HostResult) -> str:
    if host.status == UNREACHABLE:
        return f"{host.endpoint.name}: not checked ({host.detail})"
    counts = ", ".join(f"{host.count(o)} {o}" for o in ("passed", "failed", "skipped"))
    state = "could not finish" if host.status == ERROR else host.status
    return f"{host.endpoint.name}: {state}: {len(host.checks)} checks ({counts}) in {host.seconds:.1f} s"


def gate_summary(gate: GateResult) -> str:
    verdict = {EXIT_PASSED: "PASSED", EXIT_FAILED: "FAILED", EXIT_NOT_RUN: "NOT RUN"}[gate.exit_code]
    by_status = {s: sum(h.status == s for h in gate.hosts) for s in (PASSED, FAILED)}
    not_checked = len(gate.hosts) - sum(by_status.values())
    checks = sum(len(h.checks) for h in gate.hosts)
    return (
        f"smoke: {verdict}: {len(gate.hosts)} host(s), {by_status[PASSED]} passed, "
        f"{by_status[FAILED]} failed, "
        f"{not_checked} not checked; {checks} checks in {gate.seconds:.1f} s (exit {gate.exit_code})"
    )


def report(gate: GateResult) -> dict[str, Any]:
    """The JSON report: the verdict, and every check of every host."""
    return {
        "tool": "tritonfleet smoke",
        "version": __version__,
        "started": gate.started.isoformat(timespec="seconds"),
        "seconds": round(gate.seconds, 3),
        "exit_code": gate.exit_code,
        "hosts": [
            {
                "name": host.endpoint.name,
                "http": host.endpoint.http_url,
                "grpc": host.endpoint.grpc_address,
                "metrics": host.endpoint.metrics_url,
                "status": host.status,
                "detail": host.detail,
                "seconds": round(host.seconds, 3),
                "counts": {o: host.count(o) for o in ("passed", "failed", "skipped")},
                "checks": [asdict(check) for check in host.checks],
            }
            for host in gate.hosts
        ],
    }


def junit(gate: GateResult) -> str:
    """One JUnit XML document, a testsuite per host; hosts that could not be checked get an error case."""
    root = ET.Element("testsuites", name="tritonfleet smoke")
    for host in gate.hosts:
        if host.junit:
            root.extend(ET.fromstring(host.junit).iter("testsuite"))
        if host.status in (UNREACHABLE, ERROR):
            suite = ET.SubElement(root, "testsuite", name=host.endpoint.name, tests="1", errors="1")
            case = ET.SubElement(suite, "testcase", classname="tritonfleet.smoke", name="gate_ran")
            ET.SubElement(case, "error", message=host.detail).text = host.detail
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
