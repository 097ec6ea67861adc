"""What the smoke gate (smoke/) checks, as pure functions the pytest suite calls and unit tests cover.

The suite's checks and their order live in smoke/test_host.py and smoke/test_model.py; this module holds
the requests they send and the judgements they make, so each judgement can be tested on plain data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tritonfleet.errors import InputError
from tritonfleet.serving import triton
from tritonfleet.serving.contract import BACKEND, INPUTS, OUTPUTS, REQUIRED_INPUTS, REQUIRED_OUTPUTS
from tritonfleet.serving.targets import ADMIN_KEY_ENV, Endpoint
from tritonfleet.serving.triton import IndexEntry, TritonError

PROMPT = "The capital of France is"
MAX_TOKENS = 16
# Greedy and a fixed length, so that two answers must match and num_output_tokens is exact.
GREEDY: dict[str, Any] = {"temperature": 0, "max_tokens": MAX_TOKENS, "ignore_eos": True}
# What a healthy server refuses at once, each with an error message: malformed JSON, and values out
# of range (a backend that lets vLLM refuse them inside its loop never answers them).
MALFORMED_SAMPLING = {
    "malformed JSON": '{"max_tokens": ',
    "temperature -1": '{"temperature": -1, "max_tokens": 4}',
    "max_tokens 0": '{"max_tokens": 0}',
    "top_p 5": '{"top_p": 5, "max_tokens": 4}',
}
# How long a model's engine may take to answer a one-token request before the gate says it is not
# answering, and the checks that need generation fail at once instead of each waiting its timeout.
ENGINE_TIMEOUT = 25.0
# Triton's per-model request counter and the vllm backend's token counters, as prometheus_client's
# parser names counter samples: always with the `_total` suffix (Triton exports this one without).
REQUEST_SUCCESS = "nv_inference_request_success_total"
PROMPT_TOKENS = "vllm:prompt_tokens_total"
GENERATION_TOKENS = "vllm:generation_tokens_total"
# Requests the engine finished, counted with the token counters (Triton's success counter moves at a
# different moment, so only this one tells whether other requests' tokens are in the same rise).
ENGINE_REQUESTS = "vllm:request_generation_tokens_count"
COUNTED = (REQUEST_SUCCESS, PROMPT_TOKENS, GENERATION_TOKENS, ENGINE_REQUESTS)

# Triton's JSON config and metadata spell types differently from config.pbtxt.
_METADATA_TYPES = {"TYPE_STRING": "BYTES", "TYPE_BOOL": "BOOL", "TYPE_FP32": "FP32", "TYPE_UINT32": "UINT32"}


@dataclass(frozen=True)
class AdminKey:
    header: str
    value: str

    @property
    def headers(self) -> dict[str, str]:
        return {self.header: self.value}


# A header name both HTTP (an RFC 9110 token) and gRPC metadata (lower-case letters, digits, - _ .) take.
_HEADER_NAME = re.compile(r"[A-Za-z0-9_.-]+", re.ASCII)
_ADMIN_KEY_FORM = "must be HEADER=VALUE, as given to tritonserver --http-restricted-api"


def parse_admin_key(text: str | None, source: str = ADMIN_KEY_ENV) -> AdminKey | None:
    """HEADER=VALUE from the environment; InputError that never echoes any of it (it is a secret).

    The header must be a name HTTP and gRPC metadata both take, and the value printable ASCII without
    surrounding spaces: a newline or control character would end up in a request header.
    """
    if not text:
        return None
    header, sep, value = text.partition("=")
    header = header.strip()
    if not sep or not header or not value:
        raise InputError(source, None, _ADMIN_KEY_FORM)
    if not _HEADER_NAME.fullmatch(header):
        raise InputError(
            source, None, f"{_ADMIN_KEY_FORM}; the HEADER may hold only letters, digits and - _ ."
        )
    if not (value.isascii() and value.isprintable()) or value != value.strip():
        raise InputError(
            source,
            None,
            f"{_ADMIN_KEY_FORM}; the VALUE must be printable ASCII, without control characters or "
            "surrounding spaces",
        )
    return AdminKey(header.lower(), value)


@dataclass
class Discovery:
    """The models a server's repository index lists, or why it could not be read."""

    models: list[IndexEntry] = field(default_factory=list)
    error: str | None = None


@dataclass
class Settings:
    """One gate run: the hosts, the models asked for (none: all), the per-call timeout, the admin key,
    and the models each host must serve."""

    endpoints: list[Endpoint]
    models: list[str]
    timeout: float
    admin_key: AdminKey | None
    discovered: dict[str, Discovery] = field(default_factory=dict)
    expected: list[str] = field(default_factory=list)  # models every host must serve


def discover(settings: Settings, endpoint: Endpoint) -> Discovery:
    """The host's models from its repository index (read once per run), narrowed to those asked for."""
    if endpoint.name not in settings.discovered:
        headers = settings.admin_key.headers if settings.admin_key else None
        try:
            found = Discovery(triton.repository_index(endpoint, settings.timeout, headers))
        except TritonError as exc:
            found = Discovery(error=str(exc))
        if settings.models:
            # Models asked for by name are checked even when the index cannot be read.
            listed = {entry.name: entry for entry in found.models}
            unlisted = (
                ("UNKNOWN", "the repository index could not be read")
                if found.error
                else ("ABSENT", "not in the repository index")
            )
            found.models = [listed.get(name, IndexEntry(name, "", *unlisted)) for name in settings.models]
        elif settings.expected and not found.error:
            # Checked like the listed ones, so that a missing model fails its model_ready check.
            listed_names = {entry.name for entry in found.models}
            found.models += [
                IndexEntry(name, "", "ABSENT", "expected, but not in the repository index")
                for name in settings.expected
                if name not in listed_names
            ]
        settings.discovered[endpoint.name] = found
    return settings.discovered[endpoint.name]


# --- judgements --------------------------------------------------------------------------------


def contract_problems(metadata: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
    """Where a served model departs from the vllm backend's contract (names, types, decoupled)."""
    problems = []
    if config.get("backend") != BACKEND:
        problems.append(f"backend is {config.get('backend')!r}, not {BACKEND!r}")
    if not config.get("model_transaction_policy", {}).get("decoupled"):
        problems.append("not decoupled (model_transaction_policy.decoupled must be true)")
    if int(config.get("max_batch_size", 0)) != 0:
        problems.append(f"max_batch_size is {config.get('max_batch_size')}, not 0")
    for kind, contract, required, section in (
        ("input", INPUTS, REQUIRED_INPUTS, "inputs"),
        ("output", OUTPUTS, REQUIRED_OUTPUTS, "outputs"),
    ):
        configured = {t["name"]: t.get("data_type") for t in config.get(kind, [])}
        served = {t["name"]: t.get("datatype") for t in metadata.get(section, [])}
        for name in sorted(required - configured.keys()):
            problems.append(f"config has no {kind} {name!r}")
        for name, data_type in sorted(configured.items()):
            if name not in contract:
                problems.append(f"config {kind} {name!r} is not in the vllm backend contract")
            elif data_type != contract[name]:
                problems.append(f"config {kind} {name!r} is {data_type}, not {contract[name]}")
        for name, datatype in sorted(served.items()):
            expected = _METADATA_TYPES.get(contract.get(name, ""))
            if expected and datatype != expected:
                problems.append(f"metadata {kind} {name!r} is {datatype}, not {expected}")
        if set(served) != set(configured):
            problems.append(f"metadata {section} {sorted(served)} differ from config {sorted(configured)}")
    return problems


def config_inputs(config: Mapping[str, Any]) -> set[str]:
    return {t["name"] for t in config.get("input", [])}


def stream_event_problems(events: list[Mapping[str, Any]]) -> list[str]:
    """Errors and malformed events of a /generate_stream answer (an error can follow HTTP 200)."""
    problems = [f"event {i}: {e['error']}" for i, e in enumerate(events) if "error" in e]
    problems += [
        f"event {i} has no text_output"
        for i, e in enumerate(events)
        if "error" not in e and "text_output" not in e
    ]
    if not events:
        problems.append("the stream carried no event")
    return problems


@dataclass(frozen=True)
class Generated:
    """What one request generated, as the model reported it."""

    prompt_tokens: int
    output_tokens: int


def metric_problems(
    before: Mapping[str, float], after: Mapping[str, float], generated: Generated
) -> list[str]:
    """Whether the counters rose by what one request generated.

    When the engine finished other requests in between (a live host, or the gate checking several
    names of one server), the token counters must rise by at least this request's tokens; when it
    finished only ours, by exactly them.
    """
    missing = [name for name in COUNTED if name not in after]
    if missing:
        hint = " (is REPORT_CUSTOM_METRICS on?)" if any(n.startswith("vllm:") for n in missing) else ""
        return [f"{', '.join(missing)} not exported for this model{hint}"]
    rise = {name: after[name] - before.get(name, 0.0) for name in COUNTED}
    problems = []
    for name in (REQUEST_SUCCESS, ENGINE_REQUESTS):
        if rise[name] < 1:
            problems.append(f"{name} did not rise after a successful request")
    alone = rise[ENGINE_REQUESTS] == 1
    for name, expected in (
        (PROMPT_TOKENS, generated.prompt_tokens),
        (GENERATION_TOKENS, generated.output_tokens),
    ):
        if (rise[name] != expected) if alone else (rise[name] < expected):
            relation = "exactly" if alone else "at least"
            problems.append(f"{name} rose by {rise[name]:g}, expected {relation} {expected}")
    return problems
