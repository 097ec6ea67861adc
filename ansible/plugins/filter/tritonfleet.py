"""Filters over tritonfleet's reports, so that no report is picked apart in YAML."""

from __future__ import annotations

from typing import Any

MAX_SHOWN = 3


def tritonfleet_failed_checks(report: dict[str, Any]) -> str:
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
            if len(lines) < MAX_SHOWN:
                where = "/".join(part for part in (check.get("model"), check.get("check")) if part)
                reason = " ".join(str(check.get("reason", "")).split())
                lines.append(f"{where} ({reason})" if reason else where)
    if failed > MAX_SHOWN:
        lines.append(f"and {failed - MAX_SHOWN} more")
    return "; ".join(lines) or "no failed check in the report"


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"tritonfleet_failed_checks": tritonfleet_failed_checks}
