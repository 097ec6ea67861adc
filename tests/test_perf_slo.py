"""The performance gate's verdict on one run: SLOs, failed requests, and regressions against a baseline."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tritonfleet.perf.results import Latency, Measured, parse_export
from tritonfleet.perf.slo import Slo, judge

AIPERF = Path(__file__).parent / "fixtures" / "perf" / "aiperf-template-stream.json"


def run(ttft_p99: float = 14.0, itl_p99: float | None = 5.0, tokens_per_s: float = 300.0, **more) -> Measured:
    """A run with these figures (others as in the AIPerf fixture)."""
    base = parse_export(AIPERF)
    itl = None if itl_p99 is None else Latency(avg=itl_p99 / 2, p50=itl_p99 / 2, p90=itl_p99, p99=itl_p99)
    return base.model_copy(
        update={
            "time_to_first_token": Latency(avg=ttft_p99 / 2, p50=ttft_p99 / 2, p90=ttft_p99, p99=ttft_p99),
            "inter_token_latency": itl,
            "output_tokens_per_second": tokens_per_s,
            **more,
        }
    )


def verdict(checks) -> dict[str, bool]:
    return {c.check: c.passed for c in checks}


def test_a_run_within_every_slo_passes_each_check():
    slo = Slo(ttft_p99_ms=20, itl_p99_ms=10, min_output_tokens_per_second=100)
    checks = judge(run(), slo)
    assert verdict(checks) == {
        "complete": True,
        "ttft_p99": True,
        "itl_p99": True,
        "output_tokens_per_second": True,
    }
    assert checks[1].reason == "ttft_p99 14.0 ms, within the SLO (at most 20 ms)"


@pytest.mark.parametrize(
    ("measured", "failing", "reason"),
    [
        (run(ttft_p99=25.0), "ttft_p99", "ttft_p99 25.0 ms, outside the SLO (at most 20 ms)"),
        (run(itl_p99=12.5), "itl_p99", "itl_p99 12.5 ms, outside the SLO (at most 10 ms)"),
        (
            run(tokens_per_s=80.0),
            "output_tokens_per_second",
            "output_tokens_per_second 80.0 tokens/s, outside the SLO (at least 100 tokens/s)",
        ),
        (run(itl_p99=None), "itl_p99", "itl_p99: not measured"),
        (run(failed_requests=3), "complete", "3 of 8 requests failed"),
        (run(complete=False), "complete", "the run was cut short"),
    ],
)
def test_a_run_outside_one_slo_fails_that_check_alone(measured: Measured, failing: str, reason: str):
    checks = judge(measured, Slo(ttft_p99_ms=20, itl_p99_ms=10, min_output_tokens_per_second=100))
    assert [c.check for c in checks if not c.passed] == [failing]
    assert next(c for c in checks if c.check == failing).reason == reason


def test_an_slo_not_set_is_not_checked():
    assert verdict(judge(run(ttft_p99=10_000.0), Slo())) == {"complete": True}


def test_a_regression_beyond_the_allowed_percent_fails_and_says_by_how_much():
    baseline = run(ttft_p99=10.0, itl_p99=5.0, tokens_per_s=300.0)
    checks = judge(
        run(ttft_p99=11.5, itl_p99=5.4, tokens_per_s=240.0), Slo(max_regression_percent=10), baseline
    )
    assert verdict(checks) == {
        "complete": True,
        "regression:ttft_p99": False,
        "regression:itl_p99": True,
        "regression:output_tokens_per_second": False,
    }
    by_name = {c.check: c for c in checks}
    assert by_name["regression:ttft_p99"].reason == (
        "ttft_p99 11.5 ms against 10.0 ms in the baseline: 15.0% worse, more than the 10% allowed"
    )
    assert by_name["regression:ttft_p99"].limit == pytest.approx(11.0)
    assert by_name["regression:output_tokens_per_second"].limit == pytest.approx(270.0)
    assert by_name["regression:itl_p99"].reason.endswith("8.0% worse")


def test_a_faster_release_is_no_regression():
    checks = judge(run(ttft_p99=5.0, tokens_per_s=600.0), Slo(), run(ttft_p99=10.0, tokens_per_s=300.0))
    assert all(c.passed for c in checks)
    assert "better or equal" in checks[1].reason


@pytest.mark.parametrize(
    "fields",
    [
        {"ttft_p99_ms": 0},
        {"itl_p99_ms": -1.0},
        {"max_regression_percent": -5},
        {"ttft_p99_ms": "20"},
        {"ttft": 20},
    ],
)
def test_a_bad_slo_is_refused(fields: dict):
    with pytest.raises(ValidationError):
        Slo(**fields)
