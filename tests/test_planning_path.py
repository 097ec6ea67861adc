"""One planning path: what `plan` prints is what `render --host-facts` writes, with the same flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import GPU_HOSTS, MODEL_REPOSITORY

H100 = GPU_HOSTS / "h100-x1"
EIGHT_B, SEVENTY_B, TINY = "llama-3.1-8b-instruct", "llama-3.3-70b-instruct", "tiny-llama"


def facts_file(cli, tmp_path: Path, gpus: int, first_index: int = 0) -> Path:
    """A host of `gpus` H100s (from the real capture), its GPUs numbered from `first_index`."""
    result = cli("facts", "--query-csv", H100 / "smi-query.csv", "--format", "json")
    assert result.code == 0, result.err
    facts = json.loads(result.out)
    one = facts["gpus"][0]
    facts["gpus"] = [
        {**one, "index": first_index + i, "uuid": f"GPU-{i}", "pci_bus_id": None} for i in range(gpus)
    ]
    path = tmp_path / f"h100x{gpus}-{first_index}.json"
    path.write_text(json.dumps(facts))
    return path


def written_utilizations(dest: Path) -> dict[str, float | None]:
    return {
        folder.name: json.loads((folder / "1" / "model.json").read_text()).get("gpu_memory_utilization")
        for folder in sorted(dest.iterdir())
        if folder.is_dir()
    }


@pytest.mark.parametrize(
    ("gpus", "flags"),
    [
        (4, []),
        (1, ["--model", EIGHT_B, "--concurrency", f"{EIGHT_B}=2"]),
        (1, ["--model", EIGHT_B, "--kv-tokens", f"{EIGHT_B}=100000", "--margin", "0.1"]),
        (4, ["--concurrency", f"{SEVENTY_B}=2", "--concurrency", f"{EIGHT_B}=1", "--margin", "0"]),
    ],
    ids=["defaults", "concurrency", "kv-tokens-and-margin", "two-targets"],
)
def test_render_writes_exactly_the_plan(cli, tmp_path: Path, gpus: int, flags: list[str]):
    facts = facts_file(cli, tmp_path, gpus)
    planned = cli("plan", MODEL_REPOSITORY, "--host-facts", facts, *flags, "--format", "json")
    assert planned.code == 0, planned.err
    plan = {row["model"]: row["gpu_memory_utilization"] for row in json.loads(planned.out)["models"]}
    dest = tmp_path / "rendered"
    rendered = cli("render", MODEL_REPOSITORY, dest, "--host-facts", facts, *flags, "--format", "json")
    assert rendered.code == 0, rendered.err
    written = written_utilizations(dest)
    assert {name: written[name] for name in plan} == plan
    # The report says what was written, and the model the planner cannot size keeps its own value.
    models = json.loads(rendered.out)["models"]
    assert {m["name"]: m["engine_args"].get("gpu_memory_utilization") for m in models} == written
    assert TINY not in plan


def test_a_larger_concurrency_is_written_as_a_larger_share(cli, tmp_path: Path):
    # Beside the 70B model on GPU 0, so that the cap of vLLM's default share is not what decides.
    facts = facts_file(cli, tmp_path, 4)
    shares = []
    for concurrency in ("1", "2"):
        dest = tmp_path / f"c{concurrency}"
        flags = ["--concurrency", f"{EIGHT_B}={concurrency}"]
        result = cli("render", MODEL_REPOSITORY, dest, "--host-facts", facts, *flags, "--margin", "0")
        assert result.code == 0, result.err
        shares.append(written_utilizations(dest)[EIGHT_B])
    assert shares[0] < shares[1]


def test_render_names_the_models_it_did_not_plan(cli, tmp_path: Path):
    facts = facts_file(cli, tmp_path, 4)
    result = cli("render", MODEL_REPOSITORY, tmp_path / "out", "--host-facts", facts, "--format", "json")
    assert result.code == 0, result.err
    notes = json.loads(result.out)["notes"]
    assert f"{TINY}: not planned (model.json fixes kv_cache_memory_bytes)" in notes
    table = cli("render", MODEL_REPOSITORY, tmp_path / "out2", "--host-facts", facts)
    assert f"note: {TINY}: not planned (model.json fixes kv_cache_memory_bytes)" in table.out


def test_plan_and_render_label_gpus_by_their_index(cli, tmp_path: Path):
    facts = facts_file(cli, tmp_path, 4, first_index=4)
    data = json.loads(cli("plan", MODEL_REPOSITORY, "--host-facts", facts, "--format", "json").out)
    rows = {row["model"]: row for row in data["models"]}
    assert rows[SEVENTY_B]["gpus"] == [4, 5, 6, 7]
    assert rows[EIGHT_B]["gpus"] == [4]
    assert sorted(data["surplus_gib"]) == ["4", "5", "6", "7"]


@pytest.mark.parametrize("command", ["plan", "render"])
def test_two_targets_for_one_model_are_an_error(cli, tmp_path: Path, command: str):
    facts = facts_file(cli, tmp_path, 4)
    dest = [tmp_path / "out"] if command == "render" else []
    flags = ["--concurrency", f"{EIGHT_B}=2", "--kv-tokens", f"{EIGHT_B}=10000"]
    result = cli(command, MODEL_REPOSITORY, *dest, "--host-facts", facts, *flags)
    assert result.code == 2
    assert result.err.strip() == (
        f"tritonfleet {command}: error: --kv-tokens: {EIGHT_B}=10000: {EIGHT_B} already has a target "
        "from --concurrency; give one per model"
    )
    assert not (tmp_path / "out").exists()


def test_planning_flags_without_host_facts_are_an_error(cli, tmp_path: Path):
    result = cli("render", MODEL_REPOSITORY, tmp_path / "out", "--concurrency", f"{EIGHT_B}=2")
    assert result.code == 2
    assert "--host-facts: required with --concurrency, --kv-tokens or --margin" in result.err
    assert not (tmp_path / "out").exists()


def test_a_target_for_a_model_the_planner_cannot_size_is_an_error(cli, tmp_path: Path):
    facts = facts_file(cli, tmp_path, 4)
    result = cli("plan", MODEL_REPOSITORY, "--host-facts", facts, "--concurrency", f"{TINY}=2")
    assert result.code == 2
    assert (
        f"--concurrency/--kv-tokens: {TINY}: has a target but is not planned (model.json fixes" in result.err
    )


def test_a_host_without_gpus_is_named_as_such(cli, tmp_path: Path):
    facts = json.loads(facts_file(cli, tmp_path, 1).read_text())
    facts["gpus"] = []
    path = tmp_path / "cpu-only.json"
    path.write_text(json.dumps(facts))
    commands = {  # the planner says so first; validate names the model that needs one
        "plan": (["plan", MODEL_REPOSITORY], "no GPU to plan for"),
        "render": (["render", MODEL_REPOSITORY, tmp_path / "out"], "no GPU to plan for"),
        "validate": (["validate", MODEL_REPOSITORY], f"the host has no GPU; {EIGHT_B} needs one"),
    }
    for command, said in commands.values():
        result = cli(*command, "--host-facts", path, "--model", EIGHT_B)
        assert result.code == 2
        assert result.err.strip().endswith(f"{path}: gpus: {said}"), result.err
        assert "pipeline_parallel_size" not in result.err
