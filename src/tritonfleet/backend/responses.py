"""The output tensors of one response, from what vLLM produced. Pure: numpy only."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Step:
    """One response's worth of generation: a delta when streaming, the whole answer otherwise."""

    text: str
    finish_reason: str | None
    cumulative_logprob: float | None
    logprobs: list[dict[str, dict[str, Any]]] | None
    num_input_tokens: int
    num_output_tokens: int


def output_arrays(step: Step, wanted: frozenset[str]) -> dict[str, np.ndarray]:
    """text_output always; each optional output only when its return_* flag asked for it."""
    arrays = {"text_output": np.array([step.text.encode("utf-8")], dtype=np.object_)}
    if "finish_reason" in wanted:
        # Empty until the final response: the request has not finished before that.
        reason = step.finish_reason or ""
        arrays["finish_reason"] = np.array([reason.encode("utf-8")], dtype=np.object_)
    if "cumulative_logprob" in wanted:
        value = step.cumulative_logprob
        arrays["cumulative_logprob"] = np.array([value if value is not None else math.nan], dtype=np.float32)
    if "logprobs" in wanted:
        arrays["logprobs"] = np.array([json.dumps(step.logprobs).encode("utf-8")], dtype=np.object_)
    if "num_input_tokens" in wanted:
        arrays["num_input_tokens"] = np.array([step.num_input_tokens], dtype=np.uint32)
    if "num_output_tokens" in wanted:
        arrays["num_output_tokens"] = np.array([step.num_output_tokens], dtype=np.uint32)
    return arrays
