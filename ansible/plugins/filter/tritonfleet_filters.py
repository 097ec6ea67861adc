"""Filters over tritonfleet's reports, so that no report is picked apart in YAML."""

from __future__ import annotations

from typing import Any


def tritonfleet_failed_checks(report: dict[str, Any]) -> str:
    """`model/check (reason)` of a smoke report's failed checks, the first few, in one line."""
    from tritonfleet.rollout.report import failed_checks

    return failed_checks(report)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"tritonfleet_failed_checks": tritonfleet_failed_checks}
