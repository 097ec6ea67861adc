"""Every typed model.json key and every version folder is checked before use, by every command.

Each case came from a user probe where it ended in a traceback or passed unnoticed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from helpers import GPU_HOSTS

EIGHT_B = "llama-3.1-8b-instruct"
H100 = GPU_HOSTS / "h100-x1"


def edit(eight_b_repo: Path, **changes: object) -> Path:
    engine_file = eight_b_repo / EIGHT_B / "1" / "model.json"
    data = json.loads(engine_file.read_text())
    data.update(changes)
    engine_file.write_text(json.dumps(data))
    return engine_file


def run_all(cli, eight_b_repo: Path, h100_facts: Path, tmp_path: Path) -> list:
    return [
        cli("validate", eight_b_repo),
        cli("render", eight_b_repo, tmp_path / "out"),
        cli("render", eight_b_repo, tmp_path / "out", "--host-facts", h100_facts),
        cli("plan", eight_b_repo, "--host-facts", h100_facts),
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tensor_parallel_size": "four"}, 'tensor_parallel_size: "four" is not a whole number'),
        ({"tensor_parallel_size": None}, "tensor_parallel_size: null is not a whole number"),
        ({"tensor_parallel_size": [2]}, "tensor_parallel_size: [2] is not a whole number"),
        ({"tensor_parallel_size": {"n": 2}}, 'tensor_parallel_size: {"n": 2} is not a whole number'),
        ({"tensor_parallel_size": 0}, "tensor_parallel_size: 0 is below the minimum 1"),
        ({"tensor_parallel_size": 10**9}, "tensor_parallel_size: 1000000000 is above the maximum 1024"),
        ({"pipeline_parallel_size": 2.0}, "pipeline_parallel_size: 2.0 is not a whole number"),
        ({"dtype": "fp16"}, 'dtype: "fp16" does not fit vllm 0'),
        ({"dtype": 5}, "dtype: 5 is not a string"),
        ({"kv_cache_dtype": ["fp8"]}, 'kv_cache_dtype: ["fp8"] is not a string'),
        ({"kv_cache_dtype": "fp9"}, 'kv_cache_dtype: "fp9" does not fit vllm 0'),
        ({"max_model_len": 4096.0}, "max_model_len: 4096.0 is not a whole number"),
        ({"max_model_len": -1}, "max_model_len: -1 is below the minimum 1"),
        ({"gpu_memory_utilization": "0.9"}, 'gpu_memory_utilization: "0.9" is not a number'),
        ({"enforce_eager": "yes"}, 'enforce_eager: "yes" is not true or false'),
        ({"model": 7}, "model: 7 is not a string"),
    ],
)
def test_a_wrong_type_is_one_line_for_every_command(
    cli, eight_b_repo, h100_facts, tmp_path, changes, message
):
    engine_file = edit(eight_b_repo, **changes)
    for result in run_all(cli, eight_b_repo, h100_facts, tmp_path):
        assert result.code == 2, result.err
        assert result.err.count("\n") == 1
        assert f"{engine_file}: {message}" in result.err, result.err
        assert "Traceback" not in result.err
    assert not (tmp_path / "out").exists()


def test_nan_in_model_json_is_refused(cli, eight_b_repo, h100_facts, tmp_path):
    engine_file = eight_b_repo / EIGHT_B / "1" / "model.json"
    engine_file.write_text('{"model": "m", "gpu_memory_utilization": NaN}')
    for result in run_all(cli, eight_b_repo, h100_facts, tmp_path):
        assert result.code == 2
        assert f"{engine_file}: gpu_memory_utilization: NaN is not a JSON number" in result.err


@pytest.mark.parametrize("name", ["²", "٣", "1a", "v2"])
def test_a_folder_that_is_not_a_version_is_named(cli, eight_b_repo, name):
    shutil.copytree(eight_b_repo / EIGHT_B / "1", eight_b_repo / EIGHT_B / name)
    result = cli("validate", eight_b_repo)
    assert result.code == 2
    assert result.err.strip().endswith(
        f"{eight_b_repo / EIGHT_B / name}: not a version folder: "
        "Triton names them by ASCII digits (1, 2, ...)"
    )


def test_every_version_triton_serves_is_validated(cli, eight_b_repo):
    shutil.copytree(eight_b_repo / EIGHT_B / "1", eight_b_repo / EIGHT_B / "2")
    broken = eight_b_repo / EIGHT_B / "1" / "model.json"
    broken.write_text(json.dumps({**json.loads(broken.read_text()), "frobnicate": 1}))
    # The default policy serves only version 2: version 1 is not loaded, so not checked.
    assert cli("validate", eight_b_repo).code == 0
    config = eight_b_repo / EIGHT_B / "config.pbtxt"
    config.write_text(config.read_text() + "\nversion_policy: { all { } }\n")
    result = cli("validate", eight_b_repo, "--format", "json")
    assert result.code == 2
    assert f"{broken}: frobnicate: unknown engine argument" in result.err


def test_a_policy_naming_a_missing_version_is_refused(cli, eight_b_repo):
    config = eight_b_repo / EIGHT_B / "config.pbtxt"
    config.write_text(config.read_text() + "\nversion_policy: { specific { versions: [ 1, 3 ] } }\n")
    result = cli("validate", eight_b_repo)
    assert result.code == 2
    assert result.err.strip().endswith(f"{config}: version_policy.specific.versions: no version folder 3")


def test_the_report_lists_every_served_version(cli, eight_b_repo):
    shutil.copytree(eight_b_repo / EIGHT_B / "1", eight_b_repo / EIGHT_B / "2")
    config = eight_b_repo / EIGHT_B / "config.pbtxt"
    config.write_text(config.read_text() + "\nversion_policy: { latest { num_versions: 2 } }\n")
    result = cli("validate", eight_b_repo, "--format", "json")
    assert result.code == 0, result.err
    (model,) = json.loads(result.out)["models"]
    assert model["versions"] == ["1", "2"]
    assert model["version"] == "2"


def test_the_planner_refuses_two_engines_of_one_model(cli, eight_b_repo, h100_facts, tmp_path):
    shutil.copytree(eight_b_repo / EIGHT_B / "1", eight_b_repo / EIGHT_B / "2")
    config = eight_b_repo / EIGHT_B / "config.pbtxt"
    config.write_text(config.read_text() + "\nversion_policy: { all { } }\n")
    result = cli("render", eight_b_repo, tmp_path / "out", "--host-facts", h100_facts)
    assert result.code == 2
    assert f"{config}: version_policy: serves 2 versions (1, 2), each its own vLLM engine" in result.err
    assert not (tmp_path / "out").exists()


def test_too_many_instances_are_blamed_on_the_instance_count(cli, eight_b_repo, h100_facts):
    config = eight_b_repo / EIGHT_B / "config.pbtxt"
    config.write_text(config.read_text().replace("count: 1", "count: 4"))
    assert "count: 4" in config.read_text()
    result = cli("validate", eight_b_repo, "--host-facts", h100_facts)
    assert result.code == 2
    assert result.err.strip().endswith(
        f"{config}: instance_group.count: 4 instance(s) x tp 1 x pp 1 needs 4 GPU(s), but {h100_facts} has 1"
    )


def test_pipeline_stages_beyond_the_host_are_blamed_on_pipeline_parallel_size(cli, eight_b_repo, h100_facts):
    engine_file = edit(eight_b_repo, pipeline_parallel_size=2)
    result = cli("validate", eight_b_repo, "--host-facts", h100_facts)
    assert result.code == 2
    assert f"{engine_file}: pipeline_parallel_size: 1 instance(s) x tp 1 x pp 2 needs 2 GPU(s)" in result.err


def test_plan_checks_engine_arguments_too(cli, eight_b_repo, h100_facts):
    engine_file = edit(eight_b_repo, max_model_lenn=4096)
    result = cli("plan", eight_b_repo, "--host-facts", h100_facts)
    assert result.code == 2
    assert f"{engine_file}: max_model_lenn: unknown engine argument for vllm" in result.err


def test_a_max_model_len_beyond_the_model_names_model_json_not_the_flag(
    cli, eight_b_repo, h100_facts, tmp_path
):
    engine_file = edit(eight_b_repo, max_model_len=262144)
    for result in (
        cli("plan", eight_b_repo, "--host-facts", h100_facts),
        cli("render", eight_b_repo, tmp_path / "o", "--host-facts", h100_facts),
    ):
        assert result.code == 2
        assert result.err.strip().endswith(
            f"{engine_file}: max_model_len: 262144 exceeds the model's maximum of 131072 tokens"
        ), result.err
        assert "--max-model-len" not in result.err


def test_heads_that_tensor_parallelism_cannot_split_name_the_model_config(cli, eight_b_repo, tmp_path):
    result = cli("facts", "--query-csv", H100 / "smi-query.csv", "--format", "json")
    facts = json.loads(result.out)
    facts["gpus"] = [
        {**facts["gpus"][0], "index": i, "uuid": f"GPU-{i}", "pci_bus_id": None} for i in range(3)
    ]
    path = tmp_path / "h100x3.json"
    path.write_text(json.dumps(facts))
    edit(eight_b_repo, tensor_parallel_size=3)
    planned = cli("plan", eight_b_repo, "--host-facts", path)
    assert planned.code == 2
    hf_config = eight_b_repo / EIGHT_B / "hf-config.json"
    assert (
        f"{hf_config}: num_attention_heads: 32 attention heads do not divide by tensor_parallel_size 3"
        in planned.err
    )
