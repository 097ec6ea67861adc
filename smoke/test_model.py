"""Model checks, for every model in the host's repository index: ready, true to the vllm backend
contract, and generating correctly over HTTP, server-sent events and gRPC, with its metrics counting.

Generations are shared between checks (one greedy answer, one stream of each kind per model), so a
host takes a handful of short requests per model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import tritonclient.http as httpclient

from tritonfleet.gates import smoke
from tritonfleet.gates.smoke import ENGINE_TIMEOUT, GREEDY, MALFORMED_SAMPLING, MAX_TOKENS, PROMPT, Settings
from tritonfleet.serving import triton
from tritonfleet.serving.targets import Endpoint
from tritonfleet.serving.triton import IndexEntry, TritonError

METRICS_SETTLE_SECONDS = 10.0  # the official backend updates its counters from a logger thread


@dataclass(frozen=True)
class Served:
    name: str
    version: str
    metadata: dict[str, Any]
    config: dict[str, Any]


def _fail_on_triton_error(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except TritonError as exc:
        pytest.fail(str(exc))


def _not_ready(http: httpclient.InferenceServerClient, model: IndexEntry) -> str | None:
    """None when the model answers ready; else its state and load error from the repository index."""
    try:
        if http.is_model_ready(model.name):
            return None
    except Exception as exc:  # geventhttpclient raises socket and parser errors of its own
        pytest.fail(f"model {model.name}: {triton.describe(exc)}")
    reason = f": {triton.one_line(model.reason, 240)}" if model.reason else ""
    return f"{model.state or 'UNKNOWN'}{reason}"


@pytest.fixture(scope="session")
def served(http: httpclient.InferenceServerClient, model: IndexEntry) -> Served:
    """The model's metadata and config; fails every check that needs it when the model is not ready."""
    not_ready = _not_ready(http, model)
    if not_ready:
        pytest.fail(f"model {model.name} is not ready ({not_ready})")
    try:
        metadata = http.get_model_metadata(model.name)
        config = http.get_model_config(model.name)
    except Exception as exc:
        pytest.fail(f"model {model.name}: {triton.describe(exc)}")
    version = model.version or max(metadata.get("versions", ["1"]), key=int)
    return Served(model.name, version, metadata, config)


@pytest.fixture(scope="session")
def answering(settings: Settings, target: Endpoint, served: Served) -> None:
    """One token, within ENGINE_TIMEOUT: a hung engine fails here once (pytest keeps a session
    fixture's failure), and every check that generates fails at once with the same line."""
    timeout = min(settings.timeout, ENGINE_TIMEOUT)
    try:
        triton.generate(target, served.name, PROMPT, {**GREEDY, "max_tokens": 1}, timeout)
    except TritonError as exc:
        if isinstance(exc.__cause__, requests.Timeout):
            pytest.fail(f"model {served.name}: engine not answering: no token in {timeout:g} s")
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def greedy(settings: Settings, target: Endpoint, served: Served, answering: None) -> dict[str, Any]:
    return _fail_on_triton_error(
        triton.generate,
        target,
        served.name,
        PROMPT,
        GREEDY,
        settings.timeout,
        exclude_input_in_output=True,
        return_num_output_tokens=True,
        return_finish_reason=True,
    )


@pytest.fixture(scope="session")
def streamed(settings: Settings, target: Endpoint, served: Served, answering: None) -> list[dict[str, Any]]:
    if "stream" not in smoke.config_inputs(served.config):
        pytest.skip("the model's config has no `stream` input: it does not stream")
    return _fail_on_triton_error(
        triton.generate_stream, target, served.name, PROMPT, GREEDY, settings.timeout
    )


@pytest.fixture(scope="session")
def grpc_streamed(settings: Settings, target: Endpoint, served: Served, answering: None) -> triton.GrpcStream:
    if "stream" not in smoke.config_inputs(served.config):
        pytest.skip("the model's config has no `stream` input: it does not stream")
    return _fail_on_triton_error(triton.grpc_stream, target, served.name, PROMPT, GREEDY, settings.timeout)


# --- the checks, in the order they run -------------------------------------------------------


def test_model_ready(http: httpclient.InferenceServerClient, model: IndexEntry):
    not_ready = _not_ready(http, model)
    if not_ready:
        pytest.fail(not_ready)


def test_model_contract(served: Served):
    problems = smoke.contract_problems(served.metadata, served.config)
    if problems:
        pytest.fail("; ".join(problems))


def test_generate(greedy: dict[str, Any]):
    text = greedy.get("text_output")
    if not isinstance(text, str) or not text:
        pytest.fail(f"/generate answered no text: {triton.one_line(greedy, 200)}")


def test_generate_stream(streamed: list[dict[str, Any]]):
    problems = smoke.stream_event_problems(streamed)
    if problems:
        pytest.fail("; ".join(problems[:3]))
    if len(streamed) < 2:
        pytest.fail(f"{MAX_TOKENS} tokens arrived in {len(streamed)} event: the answer was not streamed")


def test_grpc_stream(grpc_streamed: triton.GrpcStream):
    if not grpc_streamed.final:
        pytest.fail("the stream ended without a final response")
    if len(grpc_streamed.texts) < 2:
        pytest.fail(f"{MAX_TOKENS} tokens arrived in {len(grpc_streamed.texts)} response: not streamed")


def test_greedy_determinism(settings: Settings, target: Endpoint, served: Served, greedy: dict[str, Any]):
    again = _fail_on_triton_error(
        triton.generate, target, served.name, PROMPT, GREEDY, settings.timeout, exclude_input_in_output=True
    )
    if again.get("text_output") != greedy.get("text_output"):
        pytest.fail(
            f"the same greedy request gave {triton.one_line(greedy.get('text_output'), 80)!r}, "
            f"then {triton.one_line(again.get('text_output'), 80)!r}"
        )


def test_stream_equals_nonstream(
    greedy: dict[str, Any], streamed: list[dict[str, Any]], grpc_streamed: triton.GrpcStream
):
    whole = greedy.get("text_output")
    sse = "".join(str(event.get("text_output", "")) for event in streamed)
    grpc = "".join(grpc_streamed.texts)
    for transport, text in (("/generate_stream", sse), ("gRPC stream", grpc)):
        if text != whole:
            pytest.fail(
                f"{transport} gave {triton.one_line(text, 80)!r}, "
                f"/generate gave {triton.one_line(whole, 80)!r}"
            )


def test_max_tokens(served: Served, greedy: dict[str, Any]):
    if "return_num_output_tokens" not in smoke.config_inputs(served.config):
        pytest.skip("the model's config has no `return_num_output_tokens` input")
    count = greedy.get("num_output_tokens")
    if count != MAX_TOKENS:
        pytest.fail(f"max_tokens {MAX_TOKENS} with ignore_eos gave num_output_tokens {count}")
    if greedy.get("finish_reason") not in (None, "length"):
        pytest.fail(f"finish_reason is {greedy.get('finish_reason')!r}, expected 'length'")


def test_malformed_request(
    settings: Settings,
    target: Endpoint,
    served: Served,
    http: httpclient.InferenceServerClient,
    answering: None,
):
    was_ready = http.is_server_ready()
    timeout = min(settings.timeout, ENGINE_TIMEOUT)
    for case, sampling in MALFORMED_SAMPLING.items():
        body = {"text_input": PROMPT, "sampling_parameters": sampling}
        try:
            response = triton.post_generate_raw(target, served.name, body, timeout)
        except TritonError as exc:
            pytest.fail(f"{case}: no answer: {exc}")
        if response.status_code < 400:
            pytest.fail(f"{case}: the request was accepted (HTTP {response.status_code})")
        try:
            error = response.json().get("error")
        except ValueError:
            error = None
        if not error:
            pytest.fail(
                f"{case}: HTTP {response.status_code} without an error message: "
                f"{triton.one_line(response.text, 120)}"
            )
    if not http.is_model_ready(served.name):
        pytest.fail("the model is not ready after malformed requests")
    if was_ready and not http.is_server_ready():
        pytest.fail("the server is not ready after malformed requests")


def test_metrics(settings: Settings, target: Endpoint, served: Served, answering: None):
    before = smoke_samples(target, served, settings.timeout)
    body = _fail_on_triton_error(
        triton.generate,
        target,
        served.name,
        PROMPT,
        {**GREEDY, "max_tokens": 4},
        settings.timeout,
        return_num_input_tokens=True,
        return_num_output_tokens=True,
    )
    generated = smoke.Generated(int(body.get("num_input_tokens", 0)), int(body.get("num_output_tokens", 0)))
    deadline = time.monotonic() + METRICS_SETTLE_SECONDS
    while True:
        after = smoke_samples(target, served, settings.timeout)
        problems = smoke.metric_problems(before, after, generated)
        exported = all(name in after for name in smoke.COUNTED)
        if not problems or not exported or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if problems:
        pytest.fail("; ".join(problems))


def smoke_samples(target: Endpoint, served: Served, timeout: float) -> dict[str, float]:
    text = _fail_on_triton_error(triton.scrape, target, timeout)
    return triton.model_samples(text, served.name, served.version)
