"""The output tensors of one response, from what vLLM produced. Pure: numpy only.

A request with `n` > 1 gets `n` elements in each per-sequence output (text, finish reason,
cumulative logprob, logprobs, output token count), in sequence order, as in NVIDIA's backend; the
prompt's token count is one element.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# What a response that is not the last one says for finish_reason (NVIDIA sends str(None)).
NOT_FINISHED = "None"


@dataclass(frozen=True)
class Sequence:
    """One sequence's share of a response: a delta when streaming, the whole answer otherwise."""

    text: str
    finish_reason: str | None
    cumulative_logprob: float | None
    logprobs: list[dict[str, dict[str, Any]]] | None
    num_output_tokens: int


@dataclass(frozen=True)
class Step:
    sequences: tuple[Sequence, ...]
    num_input_tokens: int


def _strings(values: list[str]) -> np.ndarray:
    return np.array([value.encode("utf-8") for value in values], dtype=np.object_)


def output_arrays(step: Step, wanted: frozenset[str]) -> dict[str, np.ndarray]:
    """text_output always; each optional output only when its return_* flag asked for it."""
    seqs = step.sequences
    arrays = {"text_output": _strings([s.text for s in seqs])}
    if "finish_reason" in wanted:
        arrays["finish_reason"] = _strings([s.finish_reason or NOT_FINISHED for s in seqs])
    if "cumulative_logprob" in wanted:
        arrays["cumulative_logprob"] = np.array(
            [s.cumulative_logprob if s.cumulative_logprob is not None else math.nan for s in seqs],
            dtype=np.float32,
        )
    if "logprobs" in wanted:
        arrays["logprobs"] = _strings([json.dumps(s.logprobs) for s in seqs])
    if "num_input_tokens" in wanted:
        arrays["num_input_tokens"] = np.array([step.num_input_tokens], dtype=np.uint32)
    if "num_output_tokens" in wanted:
        arrays["num_output_tokens"] = np.array([s.num_output_tokens for s in seqs], dtype=np.uint32)
    return arrays
