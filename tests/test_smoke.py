"""The smoke gate's judgements on plain data: the backend contract, stream events, metric rises, admin key.

The metadata and config fixtures are what the CPU stack's tritonserver answered for tiny-llama.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tritonfleet.errors import InputError
from tritonfleet.gates.smoke import (
    ENGINE_REQUESTS,
    GENERATION_TOKENS,
    PROMPT_TOKENS,
    REQUEST_SUCCESS,
    Generated,
    contract_problems,
    metric_problems,
    parse_admin_key,
    stream_event_problems,
)
from tritonfleet.serving import triton

from helpers import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "smoke"
METADATA = json.loads((FIXTURES / "tiny-llama-metadata.json").read_text())
CONFIG = json.loads((FIXTURES / "tiny-llama-config.json").read_text())


def test_the_served_tiny_llama_honours_the_contract():
    assert contract_problems(METADATA, CONFIG) == []


def _tensor(config: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    return next(t for t in config[kind] if t["name"] == name)


def _broken(change) -> tuple[dict[str, Any], dict[str, Any]]:
    metadata, config = copy.deepcopy(METADATA), copy.deepcopy(CONFIG)
    change(metadata, config)
    return metadata, config


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda m, c: c.update(backend="python"), "backend is 'python', not 'vllm'"),
        (lambda m, c: c.update(model_transaction_policy={}), "not decoupled"),
        (lambda m, c: c.update(max_batch_size=8), "max_batch_size is 8, not 0"),
        (
            lambda m, c: _tensor(c, "input", "stream").update(data_type="TYPE_INT32"),
            "input 'stream' is TYPE_INT32",
        ),
        (
            lambda m, c: _tensor(m, "outputs", "num_output_tokens").update(datatype="INT64"),
            "metadata output 'num_output_tokens' is INT64, not UINT32",
        ),
        (
            lambda m, c: c["input"].append({"name": "prompt", "data_type": "TYPE_STRING"}),
            "'prompt' is not in",
        ),
        (
            lambda m, c: (c.update(input=c["input"][1:]), m.update(inputs=m["inputs"][1:])),
            "config has no input 'text_input'",
        ),
        (
            lambda m, c: m.update(outputs=m["outputs"][:1]),
            "metadata outputs ['text_output'] differ from config",
        ),
    ],
    ids=[
        "backend",
        "decoupled",
        "batching",
        "input-type",
        "metadata-type",
        "extra-input",
        "no-text",
        "metadata",
    ],
)
def test_contract_departures_are_named(change, problem: str):
    problems = contract_problems(*_broken(change))
    assert any(problem in p for p in problems), problems


def test_stream_events_with_an_error_after_tokens():
    events = [{"text_output": "Paris"}, {"text_output": " is"}, {"error": "engine died"}, {"model_name": "x"}]
    assert stream_event_problems(events) == ["event 2: engine died", "event 3 has no text_output"]
    assert stream_event_problems([]) == ["the stream carried no event"]
    assert stream_event_problems(events[:2]) == []


BEFORE = {REQUEST_SUCCESS: 10.0, PROMPT_TOKENS: 100.0, GENERATION_TOKENS: 200.0, ENGINE_REQUESTS: 9.0}
ONE = Generated(prompt_tokens=6, output_tokens=4)


def test_an_idle_host_must_count_exactly():
    exact = {REQUEST_SUCCESS: 11.0, PROMPT_TOKENS: 106.0, GENERATION_TOKENS: 204.0, ENGINE_REQUESTS: 10.0}
    assert metric_problems(BEFORE, exact, ONE) == []
    doubled = {**exact, GENERATION_TOKENS: 208.0}
    assert metric_problems(BEFORE, doubled, ONE) == [
        "vllm:generation_tokens_total rose by 8, expected exactly 4"
    ]


def test_a_busy_host_must_count_at_least_our_request():
    # Another request's tokens landed in the same window, though Triton had not counted it yet.
    busy = {REQUEST_SUCCESS: 11.0, PROMPT_TOKENS: 112.0, GENERATION_TOKENS: 208.0, ENGINE_REQUESTS: 11.0}
    assert metric_problems(BEFORE, busy, ONE) == []
    short = {**busy, PROMPT_TOKENS: 103.0}
    assert metric_problems(BEFORE, short, ONE) == ["vllm:prompt_tokens_total rose by 3, expected at least 6"]


def test_a_request_that_was_not_counted():
    still = dict(BEFORE)
    problems = metric_problems(BEFORE, still, ONE)
    assert problems[:2] == [
        "nv_inference_request_success_total did not rise after a successful request",
        "vllm:request_generation_tokens_count did not rise after a successful request",
    ]


def test_missing_vllm_counters_point_at_report_custom_metrics():
    triton_only = {REQUEST_SUCCESS: 11.0}
    assert metric_problems({}, triton_only, ONE) == [
        "vllm:prompt_tokens_total, vllm:generation_tokens_total, vllm:request_generation_tokens_count "
        "not exported for this model (is REPORT_CUSTOM_METRICS on?)"
    ]


def test_admin_key():
    key = parse_admin_key("Admin-Key=s3cret=x")
    assert key is not None
    assert key.headers == {"admin-key": "s3cret=x"}
    assert parse_admin_key("") is None
    for bad in ("s3cret", "=s3cret", "admin-key="):
        with pytest.raises(InputError) as raised:
            parse_admin_key(bad)
        assert "s3cret" not in raised.value.line()  # the secret never reaches a log
        assert raised.value.line().startswith("TRITONFLEET_ADMIN_KEY: must be HEADER=VALUE")


@pytest.mark.parametrize(
    "bad",
    [
        "Admin Key=s3cret",  # a space in the header name
        "Admin:Key=s3cret",
        "Admin-Kéy=s3cret",
        "admin-key=s3cret\n",  # a newline would end the header in a request
        "admin-key=s3c\r\nX-Injected: 1",
        "admin-key=s3cret\x00",
        "admin-key= s3cret",
        "admin-key=s3cret ",
        "admin-key=s3crét",
        "\n=s3cret",
    ],
)
def test_an_admin_key_no_request_header_can_carry_is_refused_without_echoing_it(bad: str):
    with pytest.raises(InputError) as raised:
        parse_admin_key(bad)
    line = raised.value.line()
    assert "s3c" not in line and "Admin" not in line and "Injected" not in line
    assert line.startswith("TRITONFLEET_ADMIN_KEY: must be HEADER=VALUE")


def test_an_admin_key_header_is_trimmed_and_lower_cased():
    key = parse_admin_key(" X-Admin_Key.v2 =a b=c")
    assert key is not None
    assert key.headers == {"x-admin_key.v2": "a b=c"}


def test_model_series_keys_labelled_series_by_their_other_labels():
    text = (
        "# TYPE nv_inference_request_failure counter\n"
        'nv_inference_request_failure{model="m",reason="BACKEND",version="1"} 3\n'
        'nv_inference_request_failure{model="other",reason="BACKEND",version="1"} 9\n'
        "# TYPE vllm:e2e_request_latency_seconds histogram\n"
        'vllm:e2e_request_latency_seconds_bucket{model="m",version="1",le="+Inf"} 2\n'
        'vllm:e2e_request_latency_seconds_count{model="m",version="1"} 2\n'
        'vllm:e2e_request_latency_seconds_sum{model="m",version="1"} 0.5\n'
    )
    assert triton.model_series(text, "m", "1") == {
        'nv_inference_request_failure_total{reason="BACKEND"}': 3.0,
        "vllm:e2e_request_latency_seconds_count": 2.0,
        "vllm:e2e_request_latency_seconds_sum": 0.5,
    }
    assert triton.model_samples(text, "m", "1") == {
        "vllm:e2e_request_latency_seconds_count": 2.0,
        "vllm:e2e_request_latency_seconds_sum": 0.5,
    }
