"""The model.json keys tritonfleet itself reads, declared once with their types.

The backend hands every key of model.json to vLLM's AsyncEngineArgs; validate.py checks all of them
against the pinned vLLM's argument list. The ones below are also read by tritonfleet (placement, the
memory planner), so they are checked here first, when the file is loaded: the core never sees a
`"tensor_parallel_size": "four"`.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tritonfleet.errors import InputError
from tritonfleet.limits import MAX_PARALLEL, MAX_SEQUENCES, MAX_TOKENS


class EngineJson(BaseModel):
    """model.json as tritonfleet reads it. Other keys are allowed here and checked against vLLM's list."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False, frozen=True)

    model: str | None = None
    tensor_parallel_size: int = Field(1, ge=1, le=MAX_PARALLEL)
    pipeline_parallel_size: int = Field(1, ge=1, le=MAX_PARALLEL)
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1)
    dtype: str = "auto"
    kv_cache_dtype: str = "auto"
    max_model_len: int | None = Field(None, ge=1, le=MAX_TOKENS)
    max_num_seqs: int | None = Field(None, ge=1, le=MAX_SEQUENCES)
    max_num_batched_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    enable_chunked_prefill: bool | None = None
    enforce_eager: bool = False
    kv_cache_memory_bytes: int | None = Field(None, ge=1, le=1 << 50)


_WORDS = {
    "int_type": "is not a whole number",
    "float_type": "is not a number",
    "finite_number": "is not a finite number",
    "string_type": "is not a string",
    "bool_type": "is not true or false",
    "greater_than_equal": "is below the minimum {ge}",
    "greater_than": "must be above {gt}",
    "less_than_equal": "is above the maximum {le}",
    "less_than": "must be below {lt}",
}


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse(data: dict[str, Any], source: str) -> EngineJson:
    """model.json's object, checked; InputError naming the first bad key."""
    try:
        return EngineJson.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        words = _WORDS.get(first["type"])
        words = words.format(**first.get("ctx", {})) if words else f"is not valid: {first['msg']}"
        raise InputError(source, field, f"{_shown(first.get('input'))} {words}") from exc
