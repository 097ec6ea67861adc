"""Talking to a live Triton server running the vllm backend, every call with a timeout.

tritonclient covers health, metadata, the repository index and gRPC streaming. It has no client for
Triton's generate extension (/generate and the /generate_stream server-sent events), so those two are
plain HTTP. Failures become TritonError with one readable line, for gate reports.
"""

from __future__ import annotations

import json
import queue
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import requests
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.utils import InferenceServerException

from tritonfleet.serving.targets import Endpoint


class TritonError(Exception):
    """A call to the server failed; the message is one line fit for a report.

    `refused` marks Triton turning away a caller of a restricted API (no or wrong admin key).
    """

    def __init__(self, message: str, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


def one_line(text: object, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def describe(exc: BaseException) -> str:
    """What went wrong, without the stack of wrappers requests and gRPC put around it."""
    if isinstance(exc, requests.ConnectionError | ConnectionError):
        inner = str(exc)
        for hint in ("Connection refused", "timed out", "Name or service not known", "Connection reset"):
            if hint in inner:
                return hint.lower()
        return one_line(f"connection failed: {inner}")
    if isinstance(exc, requests.Timeout | TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, InferenceServerException):
        status, message = exc.status(), exc.message() or ""
        if "while decoding the response" in message:
            message = "the answer is not Triton's JSON"
        return one_line(f"{status}: {message}" if status else message)
    return one_line(f"{type(exc).__name__}: {exc}")


def reachable(endpoint: Endpoint, timeout: float) -> str | None:
    """None when the HTTP port accepts a TCP connection; otherwise why not."""
    try:
        with socket.create_connection((endpoint.host, endpoint.http_port), timeout=timeout):
            return None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, socket.timeout | TimeoutError):
            reason = f"no answer in {timeout:g} s"
        return f"{endpoint.http_address}: {reason.lower()}"


# --- health, metadata, repository ------------------------------------------------------------


def http_client(endpoint: Endpoint, timeout: float) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(
        endpoint.http_address, connection_timeout=timeout, network_timeout=timeout
    )


def grpc_client(endpoint: Endpoint) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(endpoint.grpc_address)


def grpc_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """tritonserver --grpc-restricted-protocol KEY=VALUE expects the gRPC header triton-grpc-protocol-KEY."""
    return {f"triton-grpc-protocol-{key}": value for key, value in headers.items()}


def refused(exc: BaseException) -> bool:
    """Whether a failed call was Triton refusing a restricted API (HTTP 403, or gRPC's message)."""
    return isinstance(exc, InferenceServerException) and (
        exc.status() == "403" or "is restricted, expecting header" in (exc.message() or "")
    )


@dataclass(frozen=True)
class IndexEntry:
    name: str
    version: str
    state: str
    reason: str = ""


def repository_index(
    endpoint: Endpoint, timeout: float, headers: Mapping[str, str] | None = None
) -> list[IndexEntry]:
    """Every model the server's repository holds, with its state (READY, LOADING, UNAVAILABLE...)."""
    client = http_client(endpoint, timeout)
    try:
        entries = client.get_model_repository_index(headers=dict(headers or {}))
    except Exception as exc:  # geventhttpclient raises socket and parser errors of its own too
        raise TritonError(f"HTTP repository index: {describe(exc)}", refused(exc)) from exc
    finally:
        client.close()
    return _entries(entries)


def grpc_repository_index(
    endpoint: Endpoint, timeout: float, headers: Mapping[str, str] | None = None
) -> list[IndexEntry]:
    """The same index over gRPC; `headers` as for HTTP (the gRPC header prefix is added here)."""
    client = grpc_client(endpoint)
    try:
        index = client.get_model_repository_index(
            headers=grpc_headers(headers or {}), as_json=True, client_timeout=timeout
        )
    except Exception as exc:
        raise TritonError(f"gRPC repository index: {describe(exc)}", refused(exc)) from exc
    finally:
        client.close()
    return _entries(index.get("models", []))


def _entries(entries: list[dict[str, Any]]) -> list[IndexEntry]:
    return [
        IndexEntry(
            name=str(e["name"]),
            version=str(e.get("version", "")),
            state=str(e.get("state", "")),
            reason=str(e.get("reason", "")),
        )
        for e in entries
    ]


# --- generation ------------------------------------------------------------------------------


def _generate_body(prompt: str, sampling: Mapping[str, Any], flags: Mapping[str, bool]) -> dict[str, Any]:
    return {"text_input": prompt, "sampling_parameters": json.dumps(dict(sampling)), **flags}


def _error_of(response: requests.Response) -> str:
    try:
        return one_line(response.json().get("error", response.text))
    except ValueError:
        return one_line(response.text or response.reason)


def generate(
    endpoint: Endpoint,
    model: str,
    prompt: str,
    sampling: Mapping[str, Any],
    timeout: float,
    **flags: bool,
) -> dict[str, Any]:
    """POST /v2/models/MODEL/generate; the JSON answer, or TritonError with the server's error text."""
    response = post_generate_raw(endpoint, model, _generate_body(prompt, sampling, flags), timeout)
    if response.status_code != 200:
        raise TritonError(f"POST /generate: HTTP {response.status_code}: {_error_of(response)}")
    return response.json()


def post_generate_raw(
    endpoint: Endpoint, model: str, body: Mapping[str, Any], timeout: float
) -> requests.Response:
    """The answer to any /generate body, good or bad, for checks that expect a refusal."""
    url = f"{endpoint.http_url}/v2/models/{model}/generate"
    try:
        return requests.post(url, json=dict(body), timeout=timeout)
    except requests.RequestException as exc:
        raise TritonError(f"POST /generate: {describe(exc)}") from exc


def generate_stream(
    endpoint: Endpoint,
    model: str,
    prompt: str,
    sampling: Mapping[str, Any],
    timeout: float,
    **flags: bool,
) -> list[dict[str, Any]]:
    """Every server-sent event of POST /generate_stream, parsed; errors stay in the events.

    Triton sends an error as an event after it has answered HTTP 200.
    """
    url = f"{endpoint.http_url}/v2/models/{model}/generate_stream"
    body = _generate_body(prompt, sampling, {"stream": True, **flags})
    events: list[dict[str, Any]] = []
    try:
        with requests.post(url, json=body, timeout=timeout, stream=True) as response:
            if response.status_code != 200:
                raise TritonError(
                    f"POST /generate_stream: HTTP {response.status_code}: {_error_of(response)}"
                )
            for line in response.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    events.append(parse_event(line[len("data:") :]))
    except requests.RequestException as exc:
        raise TritonError(f"POST /generate_stream: {describe(exc)}") from exc
    return events


def parse_event(data: str) -> dict[str, Any]:
    """One SSE data payload; a payload that is not a JSON object becomes an error event."""
    try:
        event = json.loads(data)
    except ValueError:
        return {"error": f"event is not JSON: {one_line(data, 120)}"}
    return (
        event if isinstance(event, dict) else {"error": f"event is not a JSON object: {one_line(data, 120)}"}
    )


@dataclass
class GrpcStream:
    texts: list[str] = field(default_factory=list)
    responses: int = 0
    final: bool = False


def grpc_inputs(prompt: str, sampling: Mapping[str, Any], stream: bool = True) -> list[grpcclient.InferInput]:
    inputs = []
    for name, value, datatype in (
        ("text_input", np.array([prompt.encode()], dtype=np.object_), "BYTES"),
        ("stream", np.array([stream]), "BOOL"),
        ("sampling_parameters", np.array([json.dumps(dict(sampling)).encode()], dtype=np.object_), "BYTES"),
    ):
        tensor = grpcclient.InferInput(name, [1], datatype)
        tensor.set_data_from_numpy(value)
        inputs.append(tensor)
    return inputs


def grpc_stream(
    endpoint: Endpoint, model: str, prompt: str, sampling: Mapping[str, Any], timeout: float
) -> GrpcStream:
    """A streaming request over gRPC bidirectional streaming; TritonError on the first error response."""
    results: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client = grpc_client(endpoint)
    got = GrpcStream()
    try:
        # A unary call first: a stream that cannot connect reports only "no longer in valid state".
        client.is_server_live(client_timeout=timeout)
        client.start_stream(
            callback=lambda result, error: results.put((result, error)), stream_timeout=timeout
        )
        client.async_stream_infer(
            model,
            grpc_inputs(prompt, sampling),
            request_id="tritonfleet-smoke",
            enable_empty_final_response=True,
        )
        while not got.final:
            try:
                result, error = results.get(timeout=timeout)
            except queue.Empty:
                raise TritonError(f"gRPC {endpoint.grpc_address}: no response in {timeout:g} s") from None
            if error is not None:
                raise TritonError(f"gRPC {endpoint.grpc_address}: {describe(error)}")
            response = result.get_response()
            got.responses += 1
            if response.outputs:
                got.texts.append(result.as_numpy("text_output")[0].decode())
            got.final = response.parameters["triton_final_response"].bool_param
    except InferenceServerException as exc:
        raise TritonError(f"gRPC {endpoint.grpc_address}: {describe(exc)}") from exc
    finally:
        client.stop_stream()
        client.close()
    return got


# --- metrics ---------------------------------------------------------------------------------


def scrape(endpoint: Endpoint, timeout: float) -> str:
    try:
        response = requests.get(endpoint.metrics_url, timeout=timeout)
    except requests.RequestException as exc:
        raise TritonError(f"metrics {endpoint.metrics_url}: {describe(exc)}") from exc
    if response.status_code != 200:
        raise TritonError(f"metrics {endpoint.metrics_url}: HTTP {response.status_code}")
    return response.text


def model_series(text: str, model: str, version: str) -> dict[str, float]:
    """Every sample of this model and version (Prometheus text format), keyed by its name and its other
    labels: `name` alone, or `name{reason="BACKEND"}` for a labelled series.

    Histogram buckets carry an `le` label as well and are left out; their `_count` and `_sum` are in.
    """
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = dict(sample.labels)
            if labels.pop("model", None) != model or labels.pop("version", None) != version or "le" in labels:
                continue
            extra = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
            found[f"{sample.name}{{{extra}}}" if extra else sample.name] = sample.value
    return found


def model_samples(text: str, model: str, version: str) -> dict[str, float]:
    """The samples labelled with exactly this model and version, by name."""
    return {name: value for name, value in model_series(text, model, version).items() if "{" not in name}
