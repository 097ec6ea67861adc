"""Whether one run meets its model's SLOs and holds against the host's last good baseline.

Pure functions over results.Measured: `judge` returns one Check per rule, passed or not, each with the
figure, the limit and a reason in words, so that a report and a gate failure say the same thing. An SLO
that is not set is not checked; a run with no baseline (the host's first) is judged on its SLOs alone.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from tritonfleet.perf.results import Measured


class Slo(BaseModel):
    """A model's service levels, and how much worse than its baseline a release may be."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    ttft_p99_ms: float | None = Field(None, gt=0)
    itl_p99_ms: float | None = Field(None, gt=0)
    min_output_tokens_per_second: float | None = Field(None, gt=0)
    # Worse than the baseline by more than this (latency up, throughput down) fails the gate.
    max_regression_percent: float = Field(10.0, ge=0, le=1000)


class Check(BaseModel):
    """One rule applied to one run."""

    model_config = ConfigDict(frozen=True)

    check: str
    passed: bool
    measured: float | None
    limit: float | None
    reason: str


# Figures a baseline is compared on: (check name, how to read it, whether higher is worse, its unit).
_COMPARED: tuple[tuple[str, Callable[[Measured], float | None], bool, str], ...] = (
    ("ttft_p99", lambda m: m.time_to_first_token.p99, True, "ms"),
    ("itl_p99", lambda m: m.inter_token_latency.p99 if m.inter_token_latency else None, True, "ms"),
    ("output_tokens_per_second", lambda m: m.output_tokens_per_second, False, "tokens/s"),
)


def _within(name: str, value: float | None, limit: float, higher_is_worse: bool, unit: str) -> Check:
    if value is None:
        return Check(check=name, passed=False, measured=None, limit=limit, reason=f"{name}: not measured")
    passed = value <= limit if higher_is_worse else value >= limit
    word = "at most" if higher_is_worse else "at least"
    verdict = "within" if passed else "outside"
    reason = f"{name} {value:.1f} {unit}, {verdict} the SLO ({word} {limit:g} {unit})"
    return Check(check=name, passed=passed, measured=value, limit=limit, reason=reason)


def _regression(
    name: str, value: float | None, base: float | None, percent: float, higher_is_worse: bool, unit: str
) -> Check | None:
    if value is None or base is None or base <= 0:
        return None
    change = (value - base) / base * 100 * (1 if higher_is_worse else -1)  # > 0: worse
    passed = change <= percent
    limit = base * (1 + percent / 100) if higher_is_worse else base * (1 - percent / 100)
    reason = (
        f"{name} {value:.1f} {unit} against {base:.1f} {unit} in the baseline: "
        f"{abs(change):.1f}% {'worse' if change > 0 else 'better or equal'}"
        f"{'' if passed else f', more than the {percent:g}% allowed'}"
    )
    return Check(check=f"regression:{name}", passed=passed, measured=value, limit=limit, reason=reason)


def judge(measured: Measured, slo: Slo, baseline: Measured | None = None) -> list[Check]:
    """Every rule SLO and BASELINE set for MEASURED, in a fixed order: the run itself, the SLOs, then
    the regressions against the baseline."""
    checks = [
        Check(
            check="complete",
            passed=measured.complete and measured.failed_requests == 0,
            measured=float(measured.failed_requests),
            limit=0.0,
            reason=(
                f"{measured.failed_requests} of {measured.requests} requests failed"
                if measured.failed_requests
                else ("the run was cut short" if not measured.complete else "every request succeeded")
            ),
        )
    ]
    limits = {
        "ttft_p99": slo.ttft_p99_ms,
        "itl_p99": slo.itl_p99_ms,
        "output_tokens_per_second": slo.min_output_tokens_per_second,
    }
    for name, read, higher_is_worse, unit in _COMPARED:
        limit = limits[name]
        if limit is not None:
            checks.append(_within(name, read(measured), limit, higher_is_worse, unit))
    if baseline is not None:
        for name, read, higher_is_worse, unit in _COMPARED:
            found = _regression(
                name, read(measured), read(baseline), slo.max_regression_percent, higher_is_worse, unit
            )
            if found is not None:
                checks.append(found)
    return checks
