"""Parsing GenAI-Perf's and AIPerf's profile exports into one result model (tritonfleet.perf.results).

The figures asserted are those in the fixtures (tests/fixtures/perf/README.md says how each was made);
a parser that read the wrong key, the wrong percentile or the wrong unit would get them wrong.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tritonfleet.errors import InputError
from tritonfleet.files import load_json_object
from tritonfleet.perf.results import parse_data, parse_export

from helpers import error_line
from strategies import mutations

FIXTURES = Path(__file__).parent / "fixtures" / "perf"
AIPERF = FIXTURES / "aiperf-template-stream.json"
GENAI_PERF = FIXTURES / "genai-perf-exporter.json"


def data(path: Path) -> dict:
    return json.loads(path.read_text())


def test_an_aiperf_export_gives_its_figures_in_milliseconds():
    measured = parse_export(AIPERF)
    assert measured.tool == "aiperf"
    assert (measured.requests, measured.failed_requests, measured.complete) == (8, 0, True)
    assert measured.time_to_first_token.p99 == pytest.approx(14.3733592)
    assert measured.time_to_first_token.p50 == pytest.approx(9.353926)
    assert measured.inter_token_latency is not None
    assert measured.inter_token_latency.p99 == pytest.approx(5.748400644666666)
    assert measured.request_latency.avg == pytest.approx(93.7136075)
    assert measured.output_tokens_per_second == pytest.approx(313.9220400168834)
    assert measured.requests_per_second == pytest.approx(19.62012750105521)
    # 8 requests of 16 tokens; AIPerf counts no input tokens for a Triton text_input template.
    assert (measured.output_tokens, measured.input_tokens_mean) == (128.0, None)


def test_a_genai_perf_export_gives_its_figures():
    measured = parse_export(GENAI_PERF)
    assert measured.tool == "genai-perf"
    assert (measured.requests, measured.complete) == (2, True)
    assert measured.time_to_first_token.avg == pytest.approx(55.0)
    assert measured.time_to_first_token.p99 == pytest.approx(59.9)
    assert measured.time_to_second_token is not None and measured.time_to_second_token.p50 == pytest.approx(
        11.0
    )
    assert measured.inter_token_latency is not None and measured.inter_token_latency.p90 == pytest.approx(
        15.9
    )
    assert measured.request_latency.p99 == pytest.approx(1198.0)
    assert (measured.output_tokens_per_second, measured.requests_per_second) == (220.0, 3.5)
    assert (measured.output_tokens, measured.input_tokens_mean) == (128.0, 128.0)


def test_a_run_that_did_not_stream_has_no_inter_token_latency():
    exported = data(GENAI_PERF)
    del exported["inter_token_latency"]  # GenAI-Perf leaves it out when every value is 0
    assert parse_data(exported, "x.json").inter_token_latency is None


def test_times_in_other_units_are_converted():
    exported = data(AIPERF)
    exported["time_to_first_token"] = {"unit": "ns", "avg": 2e6, "p50": 1e6, "p90": 3e6, "p99": 4e6}
    exported["request_latency"] = {"unit": "s", "avg": 0.2, "p50": 0.1, "p90": 0.25, "p99": 0.5}
    measured = parse_data(exported, "x.json")
    assert (measured.time_to_first_token.p50, measured.time_to_first_token.p99) == (1.0, 4.0)
    assert measured.request_latency.p99 == 500.0


def test_failed_and_cancelled_runs_are_said():
    exported = data(AIPERF)
    exported["error_request_count"] = {"unit": "requests", "avg": 3.0}
    exported["was_cancelled"] = True
    measured = parse_data(exported, "x.json")
    assert (measured.failed_requests, measured.complete) == (3, False)
    exported = data(AIPERF)
    exported["is_complete"] = False
    assert parse_data(exported, "x.json").complete is False


def broken(path: Path, change) -> dict:
    exported = copy.deepcopy(data(path))
    change(exported)
    return exported


@pytest.mark.parametrize(
    ("exported", "tool", "line"),
    [
        (
            broken(AIPERF, lambda d: d.pop("time_to_first_token")),
            None,
            "x.json: time_to_first_token: is missing",
        ),
        (
            broken(AIPERF, lambda d: d["inter_token_latency"].update(unit="furlongs")),
            None,
            "x.json: inter_token_latency.unit: 'furlongs' is not a time unit (ns, us, ms, s, sec)",
        ),
        (
            broken(AIPERF, lambda d: d["time_to_first_token"].update(p90=99.0)),
            None,
            "x.json: time_to_first_token: its percentiles do not grow (p50 <= p90 <= p99)",
        ),
        (
            broken(GENAI_PERF, lambda d: d["request_latency"].pop("p99")),
            None,
            "x.json: request_latency.p99: is missing",
        ),
        (
            broken(GENAI_PERF, lambda d: d["request_latency"].update(p50="fast")),
            None,
            "x.json: request_latency.p50: 'fast' is not a number",
        ),
        (
            broken(GENAI_PERF, lambda d: d["output_token_throughput"].update(avg=-1)),
            None,
            "x.json: output_token_throughput.avg: -1 is negative",
        ),
        (
            broken(GENAI_PERF, lambda d: d["output_token_throughput"].update(unit="tokens/min")),
            None,
            "x.json: output_token_throughput.unit: 'tokens/min' is not 'tokens/sec'",
        ),
        (
            broken(AIPERF, lambda d: d["request_count"].update(avg=7.5)),
            None,
            "x.json: request_count.avg: 7.5 is not a whole number of requests",
        ),
        (
            broken(AIPERF, lambda d: d.update(is_complete="yes")),
            None,
            "x.json: is_complete: 'yes' is not true or false",
        ),
        (data(AIPERF), "genai-perf", "x.json: is a aiperf export, not a genai-perf one"),
        ({"hello": 1}, None, "x.json: is neither a GenAI-Perf nor an AIPerf profile export"),
        (
            broken(GENAI_PERF, lambda d: d.update(request_latency=[1, 2])),
            None,
            "x.json: request_latency: is list",
        ),
    ],
)
def test_a_bad_export_is_one_line_naming_the_field(exported: dict, tool, line: str):
    with pytest.raises(InputError) as excinfo:
        parse_data(exported, "x.json", tool)
    assert error_line(excinfo).startswith(line)


def test_a_file_that_is_not_json_is_named(tmp_path: Path):
    path = tmp_path / "profile_export_aiperf.json"
    path.write_text('{"aiperf_version": "0.x",')
    with pytest.raises(InputError) as excinfo:
        parse_export(path)
    assert error_line(excinfo).startswith(f"{path}: line 1:")
    with pytest.raises(InputError) as excinfo:
        parse_export(tmp_path / "missing.json")
    assert str(tmp_path / "missing.json") in error_line(excinfo)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([AIPERF, GENAI_PERF]).flatmap(lambda p: mutations(p.read_text(), '{}[]",:0.-e')))
def test_any_damaged_export_parses_or_gives_one_line(text: str):
    try:
        parse_data(load_json_object(text, "x.json"), "x.json")
    except InputError as exc:
        assert "\n" not in str(exc)


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers()
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_METRICS = [
    "time_to_first_token",
    "request_latency",
    "inter_token_latency",
    "request_count",
    "output_sequence_length",
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([AIPERF, GENAI_PERF]), st.sampled_from(_METRICS), _JSON)
def test_any_value_in_place_of_a_metric_parses_or_gives_one_line(path: Path, key: str, value: object):
    exported = data(path)
    exported[key] = value
    try:
        parse_data(exported, "x.json")
    except InputError as exc:
        assert "\n" not in str(exc)
