"""The memory estimate scored against real vLLM start-up logs: per-row and median error for weights,
activation peak and KV cache (the dataset is tests/fixtures/memory-logs/rows.yaml, each row with its
source; bench/memory.py prints the tables, tests/test_memory.py holds the targets).

Rows whose model config is not available, or which print none of the figures, are skipped with the
reason. Settings a log does not print take the defaults of that row's vLLM generation:
- V0 (before 0.8): gpu_memory_utilization 0.9, max_num_seqs 256, max_num_batched_tokens
  max(max_model_len, 2048) without chunked prefill, which V0 turned on (at 2048) past 32K tokens;
- V1 (0.8 to 0.11, OpenAI server): 0.9; on GPUs of 70 GiB or more other than A100, max_num_seqs 1024
  and max_num_batched_tokens 8192, else 256 and 2048.
The sampler's warm-up peak depends on its implementation: rows say which one when their figures
show it (`sampler`); otherwise V0 used PyTorch's, and V1 rows take FlashInfer's, the pinned default.
A GPU total the log does not print is CUDA's figure for that GPU model (`assumed_total`).

The estimate models the pinned vLLM. Older releases split the same memory differently between the
KV budget and the rest, so each row is scored with the accounting of its own release, as read from
the sources of 0.6.4.post1, 0.6.6, 0.7.3, 0.8.5, 0.10.1.1, 0.11.0, 0.19.0 and 0.20.0
(`vllm/worker/worker.py`, `vllm/v1/worker/gpu_worker.py`, `vllm/envs.py`):
- up to 0.6.4 (also told by the one-line "Memory profiling results: ... peak_torch_memory=" format):
  every byte in use that torch did not allocate counts against the budget, the CUDA context and NCCL's
  communicators included;
- 0.6.5 to 0.10: the start-up snapshot holds the CUDA context, so it is outside the budget. NCCL is
  set up after the snapshot and counts against it, but those logs print all non-torch memory at
  0.25-0.30 GiB with TP 2 (PCIe GPUs), within the 0.55 GiB this estimate allows inside the budget at
  TP > 1 (measured on NVLink H100s), so no term is added for it;
- 0.11 to 0.19: NCCL is set up before the snapshot, outside the budget, as in the pinned release;
- up to 0.19, CUDA graphs are captured after the KV cache is sized; from 0.20 vLLM takes an estimate
  of them out of the budget first (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS defaults to 1), as the
  pinned release does and as this estimate does. For older rows the graph estimate is added back.
A row without a version string is placed by its log format (`vllm_version_min`, or V0/V1).
With tensor parallelism every rank prints its own KV GiB and the engine keeps the smallest; where a
log prints the engine's token capacity, that capacity times the bytes per token is the figure scored.

Rows whose tensor-parallel group spans nodes are scored but outside the targets (`scope`):
tritonfleet runs one Triton per host, so a model's GPUs are always on one node, and across nodes vLLM
turns custom all-reduce off and NCCL adds network buffers this estimate does not model.

`fit` marks the rows whose printed figures set the fitted constants in memory.py (sampler copies,
non-torch increase; `fitted: true` in the dataset); the summary gives the medians with and without them.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tritonfleet.errors import InputError
from tritonfleet.sizing import memory
from tritonfleet.units import GiB

# What CUDA reports as total for GPUs whose logs do not print it (GiB): H100 from tests/fixtures/gpu-hosts,
# the others as vLLM prints them in logs of the same GPU model.
GPU_TOTALS = {"H100": 79.18, "A100 80GB": 79.15, "A100 40GB": 39.39, "RTX 4090": 23.64, "RTX 3090": 23.58}
# Compute capability by GPU name (NVIDIA's table); a row naming none is taken as Hopper, like the estimate.
COMPUTE_CAPABILITY = {"H100": 9.0, "A100": 8.0, "L40S": 8.9, "RTX 4090": 8.9, "RTX 3090": 8.6,
                      "RTX 4060": 8.9, "RTX 5090": 12.0, "Turing": 7.5}  # fmt: skip
# Over-predicting the KV cache is what fails at start-up; the targets.
TARGET_MEDIAN_PERCENT = 3.0
TARGET_OVER_PERCENT = 5.0
# The figures each row is scored on, in the order the tables show them.
FIGURES = ("weights", "activation", "kv", "kv bytes/token")

# The non-torch increase at TP 1 before CUDA graphs were profiled inside vLLM's memory window (0.20,
# when their estimate entered the budget): 0.13-0.14 GiB in every 0.11-0.19 log here.
NON_TORCH_BEFORE_GRAPH_PROFILING = 140 * 2**20

Release = tuple[int, int, int]
# Where the accounting changed (see the docstring), the first release of each regime.
CONTEXT_OUTSIDE_FROM: Release = (0, 6, 5)
NCCL_OUTSIDE_FROM: Release = (0, 11, 0)
GRAPHS_INSIDE_FROM: Release = (0, 20, 0)
V1_FROM: Release = (0, 8, 0)


def release(text: object) -> Release | None:
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", str(text or ""))
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def accounting(row: dict[str, Any]) -> str:
    """The range of releases whose split between the KV budget and the rest this row's log follows."""
    version = release(row.get("vllm_version")) or release(row.get("vllm_version_min"))
    if row.get("peak_torch_memory_gib") is not None:
        version = min(version or CONTEXT_OUTSIDE_FROM, (0, 6, 4))
    if version is None:
        version = V1_FROM if row.get("engine") == "V1" else CONTEXT_OUTSIDE_FROM
    if version < CONTEXT_OUTSIDE_FROM:
        return "<=0.6.4"
    if version < NCCL_OUTSIDE_FROM:
        return "0.6.5-0.10"
    if version < GRAPHS_INSIDE_FROM:
        return "0.11-0.19"
    return ">=0.20"


def _config(slug: str, config_dirs: Sequence[Path]) -> Path | None:
    return next((d / slug for d in config_dirs if (d / slug / "config.json").is_file()), None)


def _by_gpu_name(table: dict[str, float], row: dict[str, Any]) -> float | None:
    """The table's figure for the first GPU name whose words the row's `gpu` text holds."""
    gpu = str(row.get("gpu") or "")
    return next((value for name, value in table.items() if all(part in gpu for part in name.split())), None)


def _gpu_total(row: dict[str, Any]) -> tuple[float | None, bool]:
    if row.get("total_gpu_memory_gib"):
        return float(row["total_gpu_memory_gib"]), False
    total = _by_gpu_name(GPU_TOTALS, row)
    return total, total is not None


def _compute_capability(row: dict[str, Any]) -> float:
    return _by_gpu_name(COMPUTE_CAPABILITY, row) or memory.DEFAULT_COMPUTE_CAPABILITY


def settings_for(row: dict[str, Any], shape: memory.Shape, total: float) -> memory.Settings:
    """A row's engine settings: what its log prints, its vLLM generation's defaults for the rest."""
    v1 = row.get("engine") == "V1"
    length = row.get("max_model_len") or shape.max_position
    big = total >= 70 and "A100" not in str(row.get("gpu") or "")
    seqs = row.get("max_num_seqs") or (1024 if v1 and big else 256)
    chunked = v1 or length > 32768
    batched = row.get("max_num_batched_tokens") or (
        (8192 if big else 2048) if v1 else (2048 if chunked else max(int(length), 2048))
    )
    dtype = row.get("dtype") if row.get("dtype") in ("bfloat16", "float16", "float32") else "auto"
    return memory.Settings(
        gpu_total_bytes=int(total * GiB),
        gpu_memory_utilization=float(
            row.get("gpu_memory_utilization") or row.get("gpu_memory_utilization_implied") or 0.9
        ),
        tensor_parallel_size=int(row.get("tensor_parallel_size") or 1),
        dtype=dtype,
        kv_cache_dtype="fp8" if str(row.get("kv_cache_dtype") or "").startswith("fp8") else "auto",
        max_model_len=int(length),
        max_num_seqs=int(seqs),
        max_num_batched_tokens=int(batched),
        enable_chunked_prefill=chunked,
        enforce_eager=bool(row.get("enforce_eager")),
        sampler=row.get("sampler") or ("flashinfer" if v1 else "native"),
        compute_capability=_compute_capability(row),
    )


def error_percent(estimate: float, real: float | None) -> float | None:
    """(estimate - real) / real in percent; None without a positive real figure."""
    if real is None or real <= 0:
        return None
    return (estimate - real) / real * 100


@dataclass
class Score:
    """One row: estimate and log figure (GiB per GPU) for each compared quantity."""

    row: dict[str, Any]
    accounting: str
    settings: memory.Settings
    total: float
    assumed_total: bool
    figures: dict[str, tuple[float, float | None]] = field(default_factory=dict)
    kv_basis: str = "GiB"
    scope: str | None = None  # why the row is outside the targets, when it is
    fit: bool = False

    def error(self, key: str) -> float | None:
        est, real = self.figures.get(key, (0.0, None))
        return error_percent(est, real)


def _tokens(row: dict[str, Any]) -> int | None:
    if row.get("gpu_kv_cache_tokens"):
        return int(row["gpu_kv_cache_tokens"])
    if row.get("num_gpu_blocks"):
        return int(row["num_gpu_blocks"]) * int(row.get("block_size") or memory.BLOCK_SIZE)
    return None


def kv_budget(e: memory.Estimate, kind: str, ranks: int) -> int:
    """The KV cache a release of this accounting would have sized from the same memory."""
    kv = e.requested - e.weights - e.non_torch - e.activation  # what the budget leaves, graphs aside
    if kind == ">=0.20":
        kv -= e.cuda_graph
    else:
        # Graphs were captured after profiling, so their leftovers were not in the non-torch figure.
        kv += memory.NON_TORCH_BYTES - NON_TORCH_BEFORE_GRAPH_PROFILING
    if kind == "<=0.6.4":
        kv -= memory.CUDA_CONTEXT_BYTES + (memory.NCCL_BYTES if ranks > 1 else 0)
    return kv


def score(row: dict[str, Any], config_dirs: Sequence[Path]) -> Score | str:
    """The row scored, or why it cannot be; its model config is the first of `config_dirs` holding it."""
    config = _config(row["config"], config_dirs) if row.get("config") else None
    real_weights = row.get("weights_gib") or row.get("model_loading_gib")
    real_act, real_kv = row.get("activation_peak_gib"), row.get("kv_cache_gib")
    if config is None:
        return "no config here"
    if not (real_weights or real_act or real_kv is not None):
        return "no figure to compare"
    shape = memory.shape_from_config(memory.read_config(config), str(config))
    total, assumed = _gpu_total(row)
    known_total = total is not None
    if total is None:
        total, assumed = 80.0, True  # only weights and KV bytes per token are compared without a total
    settings = settings_for(row, shape, total)
    try:
        e = memory.estimate(shape, settings, str(config))
    except InputError as exc:  # a row with settings this vLLM would refuse
        return str(exc)
    kind = accounting(row)
    if real_act is None and row.get("peak_torch_memory_gib") is not None and real_weights:
        real_act = row["peak_torch_memory_gib"] - real_weights  # the legacy format prints the absolute peak
    kv = kv_budget(e, kind, settings.tensor_parallel_size * settings.pipeline_parallel_size)
    scored = Score(row, kind, settings, total, assumed, fit=bool(row.get("fitted")))
    scored.figures["weights"] = (e.weights / GiB, real_weights)
    scored.figures["activation"] = (e.activation / GiB, real_act)
    tokens = _tokens(row)
    # V0 sampled on the first rank only, so its ranks' KV budgets differ; V1's ranks are alike.
    same_ranks = settings.tensor_parallel_size == 1 or row.get("engine") == "V1"
    if real_kv is not None and real_kv > 0 and tokens and shape.sliding_layers == 0 and same_ranks:
        scored.figures["kv bytes/token"] = (e.kv_bytes_per_token, real_kv * GiB / tokens)
    if real_kv is not None and known_total:
        if settings.tensor_parallel_size > 1 and real_kv > 0 and tokens and shape.sliding_layers == 0:
            real_kv, scored.kv_basis = tokens * e.kv_bytes_per_token / GiB, "tokens"
        scored.figures["kv"] = (kv / GiB, real_kv)
    if int(row.get("nodes") or 1) > 1:
        scored.scope = f"TP across {row['nodes']} nodes"
    return scored


def scores(rows: list[dict[str, Any]], config_dirs: Sequence[Path]) -> tuple[list[Score], list[str]]:
    """Every row scored, and the skipped ones with the reason."""
    scored, skipped = [], []
    for row in rows:
        result = score(row, config_dirs)
        if isinstance(result, str):
            skipped.append(f"{row['id']} ({result})")
        else:
            scored.append(result)
    return scored, skipped


def kv_target(scored: list[Score]) -> tuple[float, list[str]]:
    """The median |KV error| % over the rows in scope, and those over-predicted past the target."""
    in_scope = [s for s in scored if s.scope is None]
    errors = {s.row["id"]: err for s in in_scope if (err := s.error("kv")) is not None}
    over = [row for row, err in errors.items() if err > TARGET_OVER_PERCENT]
    return statistics.median(abs(v) for v in errors.values()), over


@dataclass(frozen=True)
class Median:
    """One figure's error over a group of rows (percent)."""

    figure: str
    group: str
    rows: int
    median_abs: float
    median: float
    max_abs: float


def groups(scored: list[Score]) -> dict[str, list[Score]]:
    """The rows in scope: all of them, those that set no fitted constant, and by engine generation."""
    in_scope = [s for s in scored if s.scope is None]
    return {
        "all": in_scope,
        "not fitted": [s for s in in_scope if not s.fit],
        "V1": [s for s in in_scope if s.row.get("engine") == "V1"],
        "V0": [s for s in in_scope if s.row.get("engine") != "V1"],
    }


def medians(scored: list[Score]) -> list[Median]:
    """For each figure and group of rows in scope that print it: median, median |error| and max |error|."""
    found = []
    for figure in FIGURES:
        for label, group in groups(scored).items():
            values = [err for s in group if (err := s.error(figure)) is not None]
            if values:
                absolute = [abs(v) for v in values]
                found.append(
                    Median(
                        figure,
                        label,
                        len(values),
                        statistics.median(absolute),
                        statistics.median(values),
                        max(absolute),
                    )
                )
    return found


def failed_starts(scored: list[Score]) -> list[tuple[Score, float, float]]:
    """The rows whose log shows no memory left for the KV cache, with the estimate's and the log's figure."""
    found = []
    for s in scored:
        est, real = s.figures.get("kv", (0.0, None))
        if real is not None and real <= 0:
            found.append((s, est, real))
    return found
