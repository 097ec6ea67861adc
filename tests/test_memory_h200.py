"""The estimate against the pinned vLLM's own start-ups on a real H200 (tests/fixtures/gpu-startups).

Eight engines started with dummy weights at gpu_memory_utilization 0.92, max_model_len 8192, 128
sequences and 2048 batched tokens; the runs used PyTorch's sampler (VLLM_USE_FLASHINFER_SAMPLER=0, see
the fixture's README), so the estimate is asked for that sampler too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tritonfleet.pins import versions
from tritonfleet.sizing import memory

from helpers import ROOT

# The start-ups of the vLLM pinned now: after a version bump this fixture must be measured again.
PINNED = versions.load().triton.vllm_version
FIXTURE = ROOT / "tests" / "fixtures" / "gpu-startups" / f"h200-vllm-{PINNED}"
if not (FIXTURE / "summary.yaml").is_file():
    pytest.skip(
        f"no H200 start-ups recorded for the pinned vLLM {PINNED} ({FIXTURE} is missing): measure them "
        "on the GPU machine as the other folders' README says",
        allow_module_level=True,
    )
SUMMARY = yaml.safe_load((FIXTURE / "summary.yaml").read_text())
STARTED = [m for m in SUMMARY["models"] if m["status"] == "started"]
H200_TOTAL = (143771 - 616) * memory.MiB  # memory.total - memory.reserved, as CUDA sees it


def estimate(row: dict) -> memory.Estimate:
    config = ROOT / row["config"]
    shape = memory.shape_from_config(memory.read_config(config), str(config))
    args = SUMMARY["llm_args"]
    settings = memory.Settings(
        gpu_total_bytes=H200_TOTAL,
        gpu_memory_utilization=args["gpu_memory_utilization"],
        max_model_len=args["max_model_len"],
        max_num_seqs=args["max_num_seqs"],
        max_num_batched_tokens=args["max_num_batched_tokens"],
        sampler="native",
    )
    return memory.estimate(shape, settings, str(config))


def percent(estimated: float, real: float) -> float:
    return (estimated - real) / real * 100


def test_the_fixture_has_the_startups_it_describes():
    assert len(STARTED) == 8
    assert all(Path(FIXTURE / m["log"]).is_file() for m in SUMMARY["models"])


@pytest.mark.parametrize("row", STARTED, ids=lambda r: r["log"].removesuffix(".log"))
def test_token_capacity_matches_the_log(row):
    # Gemma 2's sliding layers were 16.6% too many tokens before the pinned release's block rule.
    assert abs(percent(estimate(row).kv_cache_tokens, row["kv_cache_tokens"])) < 0.6


@pytest.mark.parametrize("row", STARTED, ids=lambda r: r["log"].removesuffix(".log"))
def test_kv_cache_is_never_over_predicted_by_more_than_half_a_percent(row):
    error = percent(estimate(row).kv_cache / memory.GiB, row["kv_cache_gib"])
    assert -0.6 < error < 0.5


@pytest.mark.parametrize("row", STARTED, ids=lambda r: r["log"].removesuffix(".log"))
def test_the_non_torch_increase_is_what_the_pinned_release_logs(row):
    # The common cause of the old estimate's small over-prediction on every model: 0.14 GiB where the
    # pinned release, which profiles CUDA graphs inside its memory window, logs 0.22-0.24.
    assert estimate(row).non_torch / memory.GiB == pytest.approx(row["non_torch_increase_gib"], abs=0.025)


def test_requested_memory_is_what_the_log_says():
    requested = {round(estimate(row).requested / memory.GiB, 2) for row in STARTED}
    assert requested == {m["requested_gib"] for m in STARTED} == {128.62}
