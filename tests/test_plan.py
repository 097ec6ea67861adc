"""`tritonfleet plan` and `render --host-facts`: utilization per model for a host's GPUs and co-tenants."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tritonfleet.host import gpus
from tritonfleet.repository import model as repository
from tritonfleet.sizing import memory
from tritonfleet.sizing import planner as plan

from helpers import GPU_HOSTS, MODEL_REPOSITORY

H100 = GPU_HOSTS / "h100-x1"
EIGHT_B, SEVENTY_B = "llama-3.1-8b-instruct", "llama-3.3-70b-instruct"


def host_facts(cli, tmp_path: Path, gpus: int) -> Path:
    """Facts of a host with `gpus` H100s, from the real single-H100 nvidia-smi output."""
    result = cli("facts", "--query-csv", H100 / "smi-query.csv", "--format", "json")
    facts = json.loads(result.out)
    one = facts["gpus"][0]
    facts["gpus"] = [{**one, "index": i, "uuid": f"GPU-{i}", "pci_bus_id": None} for i in range(gpus)]
    path = tmp_path / f"h100x{gpus}.json"
    path.write_text(json.dumps(facts))
    return path


def plan_json(cli, *args) -> dict:
    result = cli("plan", MODEL_REPOSITORY, *args, "--format", "json")
    assert result.code == 0, result.err
    return json.loads(result.out)


TOTAL = 85_017_493_504  # one H100 as CUDA sees it


def test_a_sole_tenant_gets_vllms_default_share_and_the_rest_is_surplus(cli, tmp_path: Path):
    facts = host_facts(cli, tmp_path, 1)
    data = plan_json(cli, "--host-facts", facts, "--model", EIGHT_B)
    (row,) = data["models"]
    assert row["gpus"] == [0]
    assert row["gpu_memory_utilization"] == memory.DEFAULT_GPU_MEMORY_UTILIZATION
    assert row["needed_utilization"] < row["gpu_memory_utilization"]
    # One full-length (32768-token) sequence is the default target; it gets far more.
    assert row["max_concurrency"] > 1
    outside = memory.CUDA_CONTEXT_BYTES
    assert data["surplus_gib"]["0"] == pytest.approx((TOTAL * (1 - 0.92) - outside) / memory.GiB, abs=0.01)
    assert data["start_order"] == [EIGHT_B]


def test_co_tenants_fit_together_on_the_gpu_they_share(cli, tmp_path: Path):
    facts = host_facts(cli, tmp_path, 4)
    data = plan_json(cli, "--host-facts", facts)
    rows = {row["model"]: row for row in data["models"]}
    assert rows[SEVENTY_B]["gpus"] == [0, 1, 2, 3]
    assert rows[EIGHT_B]["gpus"] == [0]
    # On GPU 0 both budgets plus what each keeps outside its budget fit in the GPU.
    outside = 2 * memory.CUDA_CONTEXT_BYTES + memory.NCCL_BYTES
    used = sum(row["gpu_memory_utilization"] for row in rows.values()) * TOTAL + outside
    assert used <= TOTAL
    assert data["surplus_gib"]["0"] >= 0
    for row in rows.values():
        assert row["gpu_memory_utilization"] >= row["needed_utilization"]
    # GPUs 1-3 carry only the 70B, whose utilization GPU 0 limits: their spare memory is reported.
    assert data["surplus_gib"]["1"] > 20
    assert data["start_order"] == [SEVENTY_B, EIGHT_B]
    assert any("--model-load-thread-count=1" in note for note in data["notes"])
    assert "tiny-llama: not planned (model.json fixes kv_cache_memory_bytes)" in data["notes"]


def test_a_larger_target_needs_a_larger_share(cli, tmp_path: Path):
    facts = host_facts(cli, tmp_path, 4)
    one = plan_json(cli, "--host-facts", facts, "--model", EIGHT_B)["models"][0]
    eight = plan_json(cli, "--host-facts", facts, "--model", EIGHT_B, "--concurrency", f"{EIGHT_B}=8")[
        "models"
    ][0]
    assert eight["needed_utilization"] > one["needed_utilization"]
    # Eight full-length sequences: 8 x 32768 tokens x 128 KiB, with the 5% margin on the whole budget.
    kv_target = 8 * 32768 * 131_072
    assert eight["needed_utilization"] * TOTAL > kv_target * 1.05
    tokens = plan_json(cli, "--host-facts", facts, "--model", EIGHT_B, "--kv-tokens", f"{EIGHT_B}=100000")
    assert tokens["models"][0]["kv_cache_tokens"] >= 100_000


def test_an_impossible_plan_names_the_need_and_the_cheapest_fixes(cli, tmp_path: Path):
    facts = host_facts(cli, tmp_path, 4)
    # Twenty full-length sequences: 20 x 32768 tokens x 128 KiB = 80 GiB of KV cache alone.
    result = cli("plan", MODEL_REPOSITORY, "--host-facts", facts, "--model", EIGHT_B,
                 "--concurrency", f"{EIGHT_B}=20")  # fmt: skip
    assert result.code == 2
    assert result.out == ""
    assert result.err.count("\n") == 1
    found = re.fullmatch(
        rf"tritonfleet plan: error: {MODEL_REPOSITORY}/{EIGHT_B}/1/model.json: {EIGHT_B} needs ([\d.]+) GiB "
        r"on GPU 0, has ([\d.]+): use tensor_parallel_size 2, or max_model_len <= (\d+), "
        rf"or kv_cache_dtype fp8, or --concurrency {EIGHT_B}=(\d+)\n",
        result.err,
    )
    assert found, result.err
    needs, has, length = float(found[1]), float(found[2]), int(found[3])
    assert needs > 80 > has > 78
    # The longest length that fits is well short of 32768, in whole steps of 1024 tokens.
    assert 16384 < length < 32768
    assert length % 1024 == 0
    # And the largest concurrency that fits: 14 of the 20 full-length sequences asked for.
    assert 1 < int(found[4]) < 20


def test_the_fixes_only_offer_gpus_the_host_has(cli, tmp_path: Path):
    facts = host_facts(cli, tmp_path, 1)
    result = cli("plan", MODEL_REPOSITORY, "--host-facts", facts, "--model", EIGHT_B,
                 "--concurrency", f"{EIGHT_B}=20")  # fmt: skip
    assert result.code == 2
    assert "tensor_parallel_size" not in result.err
    fixes = rf": use max_model_len <= \d+, or kv_cache_dtype fp8, or --concurrency {EIGHT_B}=\d+$"
    assert re.search(fixes, result.err.strip())


def test_render_fills_in_the_planned_utilization(cli, tmp_path: Path):
    facts = host_facts(cli, tmp_path, 4)
    planned = {row["model"]: row for row in plan_json(cli, "--host-facts", facts)["models"]}
    dest = tmp_path / "rendered"
    result = cli("render", MODEL_REPOSITORY, dest, "--host-facts", facts)
    assert result.code == 0, result.err
    for name in (EIGHT_B, SEVENTY_B):
        written = json.loads((dest / name / "1" / "model.json").read_text())
        source = json.loads((MODEL_REPOSITORY / name / "1" / "model.json").read_text())
        assert written["gpu_memory_utilization"] == planned[name]["gpu_memory_utilization"]
        assert {k: v for k, v in written.items() if k != "gpu_memory_utilization"} == {
            k: v for k, v in source.items() if k != "gpu_memory_utilization"
        }
    tiny = json.loads((dest / "tiny-llama" / "1" / "model.json").read_text())
    assert tiny == json.loads((MODEL_REPOSITORY / "tiny-llama" / "1" / "model.json").read_text())


def test_render_writes_nothing_when_the_plan_cannot_fit(cli, tmp_path: Path, repo_copy: Path):
    facts = host_facts(cli, tmp_path, 4)
    engine_file = repo_copy / EIGHT_B / "1" / "model.json"
    engine_args = json.loads(engine_file.read_text())
    engine_file.write_text(
        json.dumps({**engine_args, "max_model_len": 131072, "max_num_batched_tokens": 262144})
    )
    dest = tmp_path / "rendered"
    result = cli("render", repo_copy, dest, "--host-facts", facts)
    assert result.code == 2
    assert f"{EIGHT_B} needs " in result.err
    assert not dest.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rendered")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--concurrency", "llama-3.1-8b-instruct"],
            "--concurrency: llama-3.1-8b-instruct: expected MODEL=N",
        ),
        (
            ["--kv-tokens", "llama-3.1-8b-instruct=-4"],
            "--kv-tokens: llama-3.1-8b-instruct=-4: expected MODEL=N",
        ),
        (
            ["--concurrency", "llama-9b=2"],
            "--concurrency/--kv-tokens: llama-9b: no such model among those planned (llama-3.1-8b-instruct, ",
        ),
        (["--margin", "1.5"], "argument --margin: 1.5 is outside [0, 0.99]"),
        (["--model", "tiny-llama"], "tiny-llama: not planned (model.json fixes kv_cache_memory_bytes)"),
    ],
    ids=["no-count", "negative", "unknown-model", "margin", "unplannable"],
)
def test_bad_plan_arguments(cli, tmp_path: Path, args: list[str], message: str):
    facts = host_facts(cli, tmp_path, 4)
    result = cli("plan", MODEL_REPOSITORY, "--host-facts", facts, *args)
    assert result.code == 2
    assert result.out == ""
    assert result.err.count("\n") == 1
    assert message in result.err


def test_the_plan_sizes_for_the_hosts_gpu_generation(cli, tmp_path: Path):
    facts = json.loads(host_facts(cli, tmp_path, 2).read_text())
    assert plan.compute_capability(gpus.HostFacts.model_validate(facts)) == 9.0  # H100s
    facts["gpus"][1]["compute_capability"] = "8.0"  # an A100 in the box: the older kernels decide
    assert plan.compute_capability(gpus.HostFacts.model_validate(facts)) == 8.0
    for gpu in facts["gpus"]:
        gpu["compute_capability"] = None
    assert plan.compute_capability(gpus.HostFacts.model_validate(facts)) == memory.DEFAULT_COMPUTE_CAPABILITY
    # ... and hands it to every model's estimate.
    models, _ = plan.plannable(repository.load_repository(MODEL_REPOSITORY, [EIGHT_B]))
    requests = plan.requests_for(models, TOTAL, {}, 8.0)
    assert [r.settings.compute_capability for r in requests] == [8.0]
