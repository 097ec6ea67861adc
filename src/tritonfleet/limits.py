"""Bounds beyond any real deployment, shared by every place that checks a number before using it.

A value past one is a typo or a unit mistake; refusing it keeps absurd numbers out of arithmetic (a
10^300-byte GPU, a billion-way tensor parallel group) and gives the same answer from a flag, a
model.json key or a host-facts file.
"""

from __future__ import annotations

from tritonfleet.units import GiB

MAX_GPU_BYTES = 16384 * GiB  # one GPU's memory: 16 TiB, a hundred times today's largest
MAX_PARALLEL = 1024  # GPUs in one tensor- or pipeline-parallel group
MAX_SEQUENCES = 1 << 24  # max_num_seqs
MAX_TOKENS = 1 << 30  # max_model_len, max_num_batched_tokens
