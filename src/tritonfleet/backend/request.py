"""Turning a Triton request's inputs into what vLLM needs. Pure: no Triton, no vLLM imports.

The errors raised here become error responses for that one request; the server stays ready.

Sampling values come from two places, as in NVIDIA's backend: the `sampling_parameters` input (a
JSON object) and the request's own parameters (what NVIDIA's README `/generate` example sends,
`"parameters": {"temperature": 0}`, and what gRPC clients pass as `parameters=`). The input wins
where both name a key. Request parameters also carry Triton's and the client's own keys (`stream`,
`triton_enable_empty_final_response`, ...), so only the keys vLLM's SamplingParams knows are taken
from them; an unknown key in `sampling_parameters` is an error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

# Clients (and the official backend's examples) often send every sampling value as a string.
_INT_KEYS = frozenset(
    {"n", "best_of", "max_tokens", "min_tokens", "top_k", "seed", "logprobs", "prompt_logprobs"}
)
_FLOAT_KEYS = frozenset(
    {
        "temperature",
        "top_p",
        "min_p",
        "presence_penalty",
        "frequency_penalty",
        "repetition_penalty",
        "length_penalty",
    }
)
_BOOL_KEYS = frozenset(
    {
        "ignore_eos",
        "skip_special_tokens",
        "spaces_between_special_tokens",
        "detokenize",
        "include_stop_str_in_output",
    }
)
LORA_KEY = "lora_name"
# NVIDIA's wording, kept so that clients written against its backend match on the same text.
STREAM_WITH_PROMPT = (
    "Error generating stream: When streaming, `exclude_input_in_output` = False is not allowed."
)


class RequestError(ValueError):
    """A request the backend refuses (a client error); the message goes back to the client."""


@dataclass(frozen=True)
class GenerateRequest:
    prompt: str
    stream: bool = False
    sampling: dict[str, Any] = field(default_factory=dict)
    lora_name: str | None = None
    exclude_input_in_output: bool = False
    outputs: frozenset[str] = frozenset()  # optional outputs asked for by return_* flags
    # Whether the client asked for logprobs itself (the backend may ask vLLM for them on its own, to
    # compute cumulative_logprob; the logprobs output is then null, as in NVIDIA's backend).
    client_logprobs: bool = False


def _convert(key: str, value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise RequestError(f"sampling_parameters: {key}: {value!r} is not a finite number")
    if not isinstance(value, str):
        return value
    try:
        if key in _INT_KEYS:
            return int(value)
        if key in _FLOAT_KEYS:
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(value)
            return number
    except ValueError as exc:
        raise RequestError(f"sampling_parameters: {key}: {value[:80]!r} is not a finite number") from exc
    if key in _BOOL_KEYS:
        if value.lower() not in ("true", "false"):
            raise RequestError(f"sampling_parameters: {key}: {value[:80]!r} is not true or false")
        return value.lower() == "true"
    return value


def _strict_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        raw = json.loads(text, parse_constant=_strict_constant)
    except ValueError as exc:
        detail = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise RequestError(f"{what}: malformed JSON: {detail}") from exc
    except RecursionError as exc:
        raise RequestError(f"{what}: malformed JSON: nested too deeply") from exc
    if not isinstance(raw, dict):
        raise RequestError(f"{what}: must be a JSON object, got {type(raw).__name__}")
    return raw


def parse_sampling_parameters(
    text: str | None, parameters_text: str | None = None, known: Collection[str] = ()
) -> tuple[dict[str, Any], str | None]:
    """The sampling values as keyword arguments for SamplingParams, and the LoRA name.

    known: the keys SamplingParams takes, which select what is taken from the request parameters.
    """
    merged: dict[str, Any] = {}
    if parameters_text and parameters_text.strip() not in ("", "{}"):
        parameters = _json_object(parameters_text, "parameters")
        merged.update({k: v for k, v in parameters.items() if k in known or k == LORA_KEY})
    if text is not None and text.strip():
        merged.update(_json_object(text, "sampling_parameters"))
    lora_name = merged.pop(LORA_KEY, None)
    if lora_name is not None and not isinstance(lora_name, str):
        raise RequestError(f"sampling_parameters: {LORA_KEY} must be a string")
    return {key: _convert(key, value) for key, value in merged.items()}, lora_name


def _text(value: bytes | str, name: str) -> str:
    if isinstance(value, str):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(f"{name}: not UTF-8 text (byte {exc.start})") from exc


def build_request(
    prompt: bytes | str | None,
    sampling_text: bytes | str | None,
    flags: Mapping[str, bool],
    optional_outputs: Mapping[str, str],
    parameters_text: str | None = None,
    known: Collection[str] = (),
) -> GenerateRequest:
    """flags: the BOOL inputs the client sent (an absent one is not in it)."""
    if prompt is None:
        raise RequestError("text_input: missing")
    text = _text(prompt, "text_input")
    sampling_text = None if sampling_text is None else _text(sampling_text, "sampling_parameters")
    sampling, lora_name = parse_sampling_parameters(sampling_text, parameters_text, known)
    stream = flags.get("stream", False)
    # NVIDIA's contract: a stream carries only the new text, and asking for the prompt in it is an error.
    exclude = flags.get("exclude_input_in_output")
    if stream and exclude is False:
        raise RequestError(STREAM_WITH_PROMPT)
    outputs = frozenset(output for flag, output in optional_outputs.items() if flags.get(flag, False))
    client_logprobs = sampling.get("logprobs") is not None
    if outputs & {"cumulative_logprob", "logprobs"} and not client_logprobs:
        # vLLM computes logprobs only on request; 0 means "the sampled token's only".
        sampling["logprobs"] = 0
    return GenerateRequest(
        prompt=text,
        stream=stream,
        sampling=sampling,
        lora_name=lora_name,
        exclude_input_in_output=stream or bool(exclude),
        outputs=outputs,
        client_logprobs=client_logprobs,
    )
