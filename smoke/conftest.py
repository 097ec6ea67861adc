"""The smoke gate's pytest plumbing: targets from the command line, models from each server's
repository index, and one JSON line per check for `tritonfleet smoke` to report.

Run it through `tritonfleet smoke --target URL` (hosts in parallel, reports), or directly:
    pytest -c smoke/pytest.ini smoke --target http://HOST:PORT
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tritonclient.http as httpclient

from tritonfleet.errors import InputError
from tritonfleet.gates.smoke import ADMIN_KEY_ENV, Discovery, Settings, discover, parse_admin_key
from tritonfleet.serving import triton
from tritonfleet.serving.targets import DEFAULT_CALL_TIMEOUT, Endpoint, parse_model_names, parse_targets
from tritonfleet.serving.triton import IndexEntry

SETTINGS = pytest.StashKey[Settings]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tritonfleet smoke")
    group.addoption(
        "--target",
        action="append",
        default=[],
        metavar="[NAME=]URL",
        help="a server's HTTP endpoint, http://HOST:PORT[?grpc=PORT&metrics=PORT] (repeatable)",
    )
    group.addoption(
        "--model",
        action="append",
        default=[],
        metavar="NAME",
        help="check only this model (repeatable); default: every model in the repository index",
    )
    group.addoption(
        "--expect-model",
        action="append",
        default=[],
        metavar="NAME",
        help="a model the server must serve, checked even when its repository index lacks it (repeatable)",
    )
    group.addoption(
        "--call-timeout", type=float, default=DEFAULT_CALL_TIMEOUT, help="seconds one network call may take"
    )
    group.addoption("--results", metavar="FILE", help="write one JSON line per check to FILE")


def pytest_configure(config: pytest.Config) -> None:
    specs = config.getoption("--target")
    if not specs:
        raise pytest.UsageError("smoke: give at least one --target http://HOST:PORT")
    timeout = config.getoption("--call-timeout")
    try:
        if not math.isfinite(timeout) or timeout <= 0:
            raise InputError("--call-timeout", None, f"{timeout:g} is not a positive number of seconds")
        settings = Settings(
            endpoints=parse_targets(specs),
            models=config.getoption("--model"),
            expected=list(parse_model_names(config.getoption("--expect-model"), "--expect-model", None)),
            timeout=timeout,
            admin_key=parse_admin_key(os.environ.get(ADMIN_KEY_ENV)),
        )
    except InputError as exc:
        raise pytest.UsageError(f"smoke: {exc.line()}") from exc
    config.stash[SETTINGS] = settings
    config.pluginmanager.register(ResultLog(config.getoption("--results")), "tritonfleet-smoke-results")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    settings = metafunc.config.stash[SETTINGS]
    # Session scope: each host's and each model's expensive answers are fetched once and shared.
    if "model" in metafunc.fixturenames:
        pairs = [
            (endpoint, entry)
            for endpoint in settings.endpoints
            for entry in discover(settings, endpoint).models
        ]
        ids = [f"{endpoint.name}/{entry.name}" for endpoint, entry in pairs]
        metafunc.parametrize(("target", "model"), pairs, ids=ids, scope="session")
    elif "target" in metafunc.fixturenames:
        ids = [endpoint.name for endpoint in settings.endpoints]
        metafunc.parametrize("target", settings.endpoints, ids=ids, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A host whose index lists no model has no model checks; pytest would report an empty parameter
    # set as a skip, which would count a check that never ran. The repository_index check fails instead.
    kept, dropped = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        target = params.params.get("target") if params else None
        if not isinstance(target, Endpoint):
            dropped.append(item)
            continue
        kept.append(item)
        model = params.params.get("model") if params else None
        check = item.originalname.removeprefix("test_")  # type: ignore[attr-defined]
        model_name = model.name if isinstance(model, IndexEntry) else ""
        item.user_properties += [("host", target.name), ("model", model_name), ("check", check)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


class ResultLog:
    """Folds each check's setup, call and teardown into one result, written as a JSON line when it ends."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.results: dict[str, dict[str, Any]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = self.results.setdefault(
            report.nodeid,
            {**dict(report.user_properties), "outcome": "passed", "seconds": 0.0, "reason": ""},
        )
        entry["seconds"] += report.duration
        if report.outcome == "passed" or entry["outcome"] != "passed":
            return
        entry["outcome"] = "skipped" if report.skipped else "failed"
        entry["reason"] = _reason(report)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        entry = self.results.get(nodeid)
        if entry is None or not self.path:
            return
        entry["seconds"] = round(entry["seconds"], 3)
        with Path(self.path).open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")


def _reason(report: pytest.TestReport) -> str:
    """One line: the message of pytest.fail or pytest.skip, or the first line of the exception."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (file, line, "Skipped: reason")
        return triton.one_line(longrepr[2].removeprefix("Skipped: "))
    crash = getattr(longrepr, "reprcrash", None)
    message = (crash.message if crash is not None else str(longrepr)).removeprefix("Failed: ")
    return triton.one_line(message.splitlines()[0] if message else report.outcome, limit=400)


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def settings(request: pytest.FixtureRequest) -> Settings:
    return request.config.stash[SETTINGS]


@pytest.fixture(scope="session")
def discovery(settings: Settings, target: Endpoint) -> Discovery:
    return discover(settings, target)


@pytest.fixture(scope="session")
def http(settings: Settings, target: Endpoint) -> Iterator[httpclient.InferenceServerClient]:
    client = triton.http_client(target, settings.timeout)
    yield client
    client.close()
