"""The rollout's summary: one row per host the last `make deploy` targeted, from the records the
playbook leaves on the control node (build/deploy/hosts/<host>/outcome.json).

A host with a staging folder but no outcome did not get as far as its gate in that run (it failed
earlier or became unreachable); the table says so rather than leaving it out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from tritonfleet.errors import InputError
from tritonfleet.files import read_text

OUTCOME_FILE = "outcome.json"
TARGETED_FILE = "targeted"  # written when the run's validation targets the host
STATUSES = ("serving", "rolled back")  # what site.yml records; a host it could not record has none


@dataclass(frozen=True)
class Outcome:
    host: str
    status: str  # one of STATUSES, or "no result"
    release: str = ""
    image: str = ""
    models: tuple[str, ...] = ()
    detail: str = ""


def _field(data: dict, key: str, path: Path) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise InputError(path, key, f"{value!r} is not a string")
    return value


def read_outcome(host_dir: Path) -> Outcome:
    path = host_dir / OUTCOME_FILE
    if not path.exists():
        return Outcome(host_dir.name, "no result", detail="stopped before its gate (see the play recap)")
    try:
        data = json.loads(read_text(path, "rollout outcome", regular=True))
    except json.JSONDecodeError as exc:
        raise InputError(path, None, f"not JSON: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(data, dict):
        raise InputError(path, None, "not a JSON object")
    status = _field(data, "status", path)
    if status not in STATUSES:
        raise InputError(path, "status", f"{status!r} is not one of: {', '.join(STATUSES)}")
    models = data.get("models", [])
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise InputError(path, "models", "is not a list of model names")
    return Outcome(
        host_dir.name,
        status,
        _field(data, "release", path),
        _field(data, "image", path),
        tuple(models),
        _field(data, "detail", path),
    )


def read_outcomes(deploy_dir: Path) -> list[Outcome]:
    """The outcomes of the hosts the last run targeted, by host name."""
    hosts_dir = deploy_dir / "hosts"
    if not hosts_dir.is_dir():
        raise InputError(hosts_dir, None, "no rollout has run here (no such folder)")
    targeted = sorted(p for p in hosts_dir.iterdir() if p.is_dir() and (p / TARGETED_FILE).exists())
    return [read_outcome(p) for p in targeted]


def outcomes_table(outcomes: list[Outcome]) -> Table:
    table = Table(title="rollout", title_justify="left")
    for column in ("host", "status", "release", "image", "models", "detail"):
        table.add_column(column, overflow="fold")
    style = {"serving": "green", "rolled back": "yellow"}
    for o in outcomes:
        image = o.image.rsplit("@", 1)[-1][:19] if "@" in o.image else o.image
        table.add_row(
            o.host,
            f"[{style.get(o.status, 'red')}]{o.status}[/]",
            o.release,
            image,
            ", ".join(o.models),
            o.detail,
        )
    return table


FAILED_SHOWN = 3


def failed_checks(report: dict[str, Any]) -> str:
    """`model/check (reason)` of a smoke report's failed checks, the first few, in one line."""
    lines = []
    failed = 0
    for host in report.get("hosts", []):
        if host.get("detail"):
            lines.append(str(host["detail"]))
        for check in host.get("checks", []):
            if check.get("outcome") != "failed":
                continue
            failed += 1
            if len(lines) < FAILED_SHOWN:
                where = "/".join(part for part in (check.get("model"), check.get("check")) if part)
                reason = " ".join(str(check.get("reason", "")).split())
                lines.append(f"{where} ({reason})" if reason else where)
    if failed > FAILED_SHOWN:
        lines.append(f"and {failed - FAILED_SHOWN} more")
    return "; ".join(lines) or "no failed check in the report"
