"""The memory estimate against real vLLM start-up logs: per-row and median error for weights,
activation peak and KV cache (tests/fixtures/memory-logs/rows.yaml, each row with its source).

Rows whose model config is not available here, or which print none of the three figures, are listed
and skipped. Settings a log does not print take the defaults of that row's vLLM generation:
- V0 (before 0.8): gpu_memory_utilization 0.9, max_num_seqs 256, max_num_batched_tokens
  max(max_model_len, 2048) without chunked prefill, which V0 turned on (at 2048) past 32K tokens;
- V1 (0.8 to 0.11, OpenAI server): 0.9; on GPUs of 70 GiB or more other than A100, max_num_seqs 1024
  and max_num_batched_tokens 8192, else 256 and 2048.
The sampler's warm-up peak depends on its implementation: rows say which one when their figures
show it (`sampler`); otherwise V0 used PyTorch's, and V1 rows take FlashInfer's, the pinned default.
Those versions did not take the CUDA-graph estimate out of the KV budget (the pinned vLLM does), so
for them the comparison adds it back. A GPU total the log does not print is CUDA's figure for that
GPU model (flagged `*`).

This is a benchmark: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import yaml
from rich.table import Table

from tritonfleet import memory
from tritonfleet.cli import console as wide_console

ROOT = Path(__file__).resolve().parents[1]
ROWS = ROOT / "tests" / "fixtures" / "memory-logs" / "rows.yaml"
CONFIG_DIRS = (
    ROOT / "tests" / "fixtures" / "model-configs",
    ROOT / "tests" / "fixtures" / "memory-logs" / "configs",
)
# What CUDA reports as total for GPUs whose logs do not print it (GiB): H100 from tests/fixtures/gpu-hosts,
# the others as vLLM prints them in logs of the same GPU model.
GPU_TOTALS = {"H100": 79.18, "A100 80GB": 79.15, "A100 40GB": 39.39, "RTX 4090": 23.64, "RTX 3090": 23.58}


def _config(slug: str) -> Path | None:
    return next((d / slug for d in CONFIG_DIRS if (d / slug / "config.json").is_file()), None)


def _gpu_total(row: dict) -> tuple[float | None, bool]:
    if row.get("total_gpu_memory_gib"):
        return float(row["total_gpu_memory_gib"]), False
    gpu = str(row.get("gpu") or "")
    for name, total in GPU_TOTALS.items():
        if all(part in gpu for part in name.split()):
            return total, True
    return None, False


def settings_for(row: dict, shape: memory.Shape, total: float) -> memory.Settings:
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
        gpu_total_bytes=int(total * memory.GiB),
        gpu_memory_utilization=float(row.get("gpu_memory_utilization") or 0.9),
        tensor_parallel_size=int(row.get("tensor_parallel_size") or 1),
        dtype=dtype,
        kv_cache_dtype="fp8" if str(row.get("kv_cache_dtype") or "").startswith("fp8") else "auto",
        max_model_len=int(length),
        max_num_seqs=int(seqs),
        max_num_batched_tokens=int(batched),
        enable_chunked_prefill=chunked,
        enforce_eager=bool(row.get("enforce_eager")),
        sampler=row.get("sampler") or ("flashinfer" if v1 else "native"),
    )


def _error(estimate: float, real: float | None) -> float | None:
    if real is None or real <= 0:
        return None
    return (estimate - real) / real * 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=Path, default=ROWS)
    args = parser.parse_args()
    rows = yaml.safe_load(args.rows.read_text())
    console = wide_console()
    table = Table(
        title=f"memory estimate vs {args.rows.relative_to(ROOT)} (GiB per GPU; error = (est - log) / log)"
    )
    for column in ("row", "vLLM", "tp", "util", "total", "weights est/log", "err %", "activation est/log",
                   "err %", "KV est/log", "err %"):  # fmt: skip
        table.add_column(column, justify="left" if column == "row" else "right")
    errors: dict[str, list[float]] = {"weights": [], "activation": [], "kv": []}
    by_engine: dict[tuple[str, str], list[float]] = {}
    over, failures, skipped = [], [], []
    for row in rows:
        config = _config(row["config"]) if row.get("config") else None
        real_weights = row.get("weights_gib") or row.get("model_loading_gib")
        real_act, real_kv = row.get("activation_peak_gib"), row.get("kv_cache_gib")
        if config is None or not (real_weights or real_act or real_kv is not None):
            skipped.append(f"{row['id']} ({'no config here' if config is None else 'no figure to compare'})")
            continue
        shape = memory.shape_from_config(memory.read_config(config), str(config))
        total, assumed = _gpu_total(row)
        if total is None:
            total, assumed = 80.0, True  # only weights are compared without a total
        settings = settings_for(row, shape, total)
        try:
            e = memory.estimate(shape, settings, str(config))
        except Exception as exc:  # a row with settings this vLLM would refuse
            skipped.append(f"{row['id']} ({exc})")
            continue
        gib = memory.GiB
        weights, act = e.weights / gib, e.activation / gib
        # Older vLLMs left CUDA graphs out of the KV budget; the pinned one takes its estimate out.
        kv = (e.kv_cache + e.cuda_graph) / gib
        if real_kv is not None and real_kv <= 0:
            kv = (e.requested - e.weights - e.non_torch - e.activation) / gib
        cells = {}
        engine = "V1" if row.get("engine") == "V1" else "V0"
        for key, est, real in (
            ("weights", weights, real_weights),
            ("activation", act, real_act),
            ("kv", kv, real_kv),
        ):
            err = _error(est, real)
            if err is not None:
                errors[key].append(err)
                by_engine.setdefault((engine, key), []).append(err)
            shown = f"{est:.2f}/{real:.2f}" if real is not None else f"{est:.2f}/-"
            cells[key] = (shown, f"{err:+.1f}" if err is not None else "-")
        if real_kv is not None and real_kv > 0 and kv > real_kv * 1.05:
            over.append(f"{row['id']} ({engine})")
        if real_kv is not None and real_kv <= 0:
            verdict = "fails too" if kv <= 0 else "MISSED"
            failures.append(f"{row['id']}: log {real_kv:.2f} GiB, estimate {kv:.2f} GiB ({verdict})")
        table.add_row(
            row["id"],
            str(row.get("vllm_version") or row.get("engine") or "-"),
            str(settings.tensor_parallel_size),
            f"{settings.gpu_memory_utilization:g}",
            f"{total:.2f}{'*' if assumed else ''}",
            *cells["weights"],
            *cells["activation"],
            *cells["kv"],
        )
    console.print(table)
    summary = Table(title="median |error| over the rows that print the figure (V1 is the pinned engine)")
    for column in ("figure", "engine", "rows", "median |error| %", "median error %", "max |error| %"):
        summary.add_column(column, justify="right")
    groups = [((key, "all"), values) for key, values in errors.items()]
    groups += [((key, engine), by_engine.get((engine, key), [])) for key in errors for engine in ("V1", "V0")]
    for (key, engine), values in groups:
        if values:
            absolute = [abs(v) for v in values]
            median = f"{statistics.median(absolute):.1f}"
            summary.add_row(
                key,
                engine,
                str(len(values)),
                median,
                f"{statistics.median(values):+.1f}",
                f"{max(absolute):.1f}",
            )
    console.print(summary)
    console.print(f"KV over-predicted by more than 5%: {len(over)} row(s) {over}")
    for line in failures:
        console.print(f"failed start: {line}")
    console.print(f"skipped {len(skipped)} row(s): " + "; ".join(skipped))


if __name__ == "__main__":
    main()
