"""Turning a Triton request's inputs into what vLLM needs. Pure: no Triton, no vLLM imports.

The errors raised here become error responses for that one request; the server stays ready.
"""

from __future__ import annotations

import json
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
_BOOL_KEYS = frozenset({"ignore_eos", "skip_special_tokens", "spaces_between_special_tokens", "detokenize"})


class RequestError(ValueError):
    """A request the backend refuses; the message goes back to the client."""


@dataclass(frozen=True)
class GenerateRequest:
    prompt: str
    stream: bool = False
    sampling: dict[str, Any] = field(default_factory=dict)
    lora_name: str | None = None
    exclude_input_in_output: bool = False
    outputs: frozenset[str] = frozenset()  # optional outputs asked for by return_* flags


def _convert(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        if key in _INT_KEYS:
            return int(value)
        if key in _FLOAT_KEYS:
            return float(value)
    except ValueError as exc:
        raise RequestError(f"sampling_parameters: {key}: {value!r} is not a number") from exc
    if key in _BOOL_KEYS:
        if value.lower() not in ("true", "false"):
            raise RequestError(f"sampling_parameters: {key}: {value!r} is not true or false")
        return value.lower() == "true"
    return value


def parse_sampling_parameters(text: str | None) -> tuple[dict[str, Any], str | None]:
    """The sampling_parameters JSON as keyword arguments for SamplingParams, and the LoRA name."""
    if text is None or not text.strip():
        return {}, None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestError(f"sampling_parameters: malformed JSON: {exc.msg} at column {exc.colno}") from exc
    if not isinstance(raw, dict):
        raise RequestError(f"sampling_parameters: must be a JSON object, got {type(raw).__name__}")
    lora_name = raw.pop("lora_name", None)
    if lora_name is not None and not isinstance(lora_name, str):
        raise RequestError("sampling_parameters: lora_name must be a string")
    return {key: _convert(key, value) for key, value in raw.items()}, lora_name


def build_request(
    prompt: bytes | str | None,
    sampling_text: bytes | str | None,
    flags: dict[str, bool],
    optional_outputs: dict[str, str],
) -> GenerateRequest:
    """flags: the BOOL inputs the client sent (absent ones are false)."""
    if prompt is None:
        raise RequestError("text_input: missing")
    text = prompt.decode("utf-8", errors="replace") if isinstance(prompt, bytes) else prompt
    if isinstance(sampling_text, bytes):
        sampling_text = sampling_text.decode("utf-8", errors="replace")
    sampling, lora_name = parse_sampling_parameters(sampling_text)
    outputs = frozenset(output for flag, output in optional_outputs.items() if flags.get(flag, False))
    if outputs & {"cumulative_logprob", "logprobs"} and sampling.get("logprobs") is None:
        # vLLM computes logprobs only on request; 0 means "the sampled token's only".
        sampling["logprobs"] = 0
    return GenerateRequest(
        prompt=text,
        stream=flags.get("stream", False),
        sampling=sampling,
        lora_name=lora_name,
        exclude_input_in_output=flags.get("exclude_input_in_output", False),
        outputs=outputs,
    )
