"""Regressions from a second probe of about 750 unusual inputs: each case once ended in a traceback, a
wrong or silent answer, a message blaming the wrong thing, or an error of more than one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import GPU_HOSTS, MODEL_REPOSITORY

EIGHT_B = "llama-3.1-8b-instruct"
TOOL = Path(sys.executable).parent / "tritonfleet"


def one_line(result, ending: str) -> None:
    assert result.code == 2, result
    assert result.err.count("\n") == 1, result.err
    assert result.err.rstrip("\n").endswith(ending), result.err


def engine_file(eight_b_repo: Path) -> Path:
    return eight_b_repo / EIGHT_B / "1" / "model.json"


def config_file(eight_b_repo: Path) -> Path:
    return eight_b_repo / EIGHT_B / "config.pbtxt"


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("kind: KIND_MODEL", "kind: 7", "instance_group[0].kind: 7 is not one of KIND_AUTO, KIND_GPU"),
        (
            "data_type: TYPE_STRING",
            "data_type: 99",
            "input[text_input].data_type: 99 is not one of TYPE_INVALID",
        ),
    ],
)
def test_an_enum_given_as_a_number_that_names_nothing(
    cli, eight_b_repo: Path, old: str, new: str, field: str
):
    config = config_file(eight_b_repo)
    config.write_text(config.read_text().replace(old, new, 1))
    result = cli("validate", eight_b_repo)
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert f"{config}: {field}" in result.err


def test_a_lone_surrogate_in_model_json(cli, eight_b_repo: Path, tmp_path: Path):
    engine_file(eight_b_repo).write_text('{"model": "\\ud800"}')
    for result in (cli("validate", eight_b_repo), cli("render", eight_b_repo, tmp_path / "out")):
        one_line(result, "holds a \\u escape that is not a character (a lone surrogate)")
    assert not (tmp_path / "out").exists()


def test_a_float_beyond_range_in_any_model_json_key(cli, eight_b_repo: Path, tmp_path: Path):
    data = json.loads(engine_file(eight_b_repo).read_text())
    engine_file(eight_b_repo).write_text(json.dumps(data)[:-1] + ', "cpu_offload_gb": 1e400}')
    one_line(
        cli("validate", eight_b_repo),
        f"{engine_file(eight_b_repo)}: cpu_offload_gb: 1e400 is too large a number",
    )


def test_a_key_given_twice_in_model_json(cli, eight_b_repo: Path):
    engine_file(eight_b_repo).write_text('{"model": "m", "dtype": "fp16", "dtype": "bfloat16"}')
    one_line(
        cli("validate", eight_b_repo), 'malformed JSON: key "dtype" appears twice (JSON keeps only the last)'
    )


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("02", "Triton ignores version folders whose name starts with 0: name it 1, 2, ..."),
        ("0", "Triton ignores version folders whose name starts with 0: name it 1, 2, ..."),
        ("99999999999999999999", "beyond Triton's largest version number 9223372036854775807"),
    ],
)
def test_version_folders_triton_would_not_serve(cli, eight_b_repo: Path, name: str, why: str):
    shutil.copytree(eight_b_repo / EIGHT_B / "1", eight_b_repo / EIGHT_B / name)
    one_line(cli("validate", eight_b_repo), f"{eight_b_repo / EIGHT_B / name}: {why}")


def test_a_gpu_the_host_does_not_have(cli, eight_b_repo: Path, h100_facts: Path):
    config = config_file(eight_b_repo)
    config.write_text(config.read_text().replace("kind: KIND_MODEL", "kind: KIND_GPU, gpus: [ 5 ]"))
    one_line(
        cli("validate", eight_b_repo, "--host-facts", h100_facts),
        f"{config}: instance_group[0].gpus: GPU 5 is not on the host: {h100_facts} has GPUs [0]",
    )


def test_two_instances_are_two_engines_the_planner_refuses(cli, eight_b_repo: Path, tmp_path: Path):
    config = config_file(eight_b_repo)
    config.write_text(config.read_text().replace("count: 1", "count: 2"))
    h200 = GPU_HOSTS / "h200-x2"  # two GPUs: the instances fit by count, so the planner must say it
    made = cli("facts", "--query-csv", h200 / "smi-query.csv", "--format", "json")
    h200_facts = tmp_path / "h200.json"
    h200_facts.write_text(made.out)
    result = cli("render", eight_b_repo, tmp_path / "out", "--host-facts", h200_facts)
    assert result.code == 2
    assert f"{config}: instance_group.count: 2 instances, each its own vLLM engine" in result.err
    assert not (tmp_path / "out").exists()


def test_a_prefill_vllm_refuses_is_refused_by_the_planner(cli, eight_b_repo: Path, h100_facts: Path):
    data = json.loads(engine_file(eight_b_repo).read_text())
    engine_file(eight_b_repo).write_text(
        json.dumps({**data, "max_num_batched_tokens": 16, "enable_chunked_prefill": False})
    )
    one_line(
        cli("plan", eight_b_repo, "--host-facts", h100_facts),
        f"{engine_file(eight_b_repo)}: max_num_batched_tokens: 16 is below max_model_len 32768 "
        "without chunked prefill: vLLM refuses this",
    )


def test_a_gpu_generation_vllm_does_not_run_on_names_the_facts_file(
    cli, eight_b_repo: Path, h100_facts: Path, tmp_path
):
    data = json.loads(h100_facts.read_text())
    data["gpus"][0]["compute_capability"] = "6.1"
    old = tmp_path / "p40.json"
    old.write_text(json.dumps(data))
    result = cli("plan", eight_b_repo, "--host-facts", old)
    assert result.code == 2
    assert f"{old}: gpus.compute_capability: 6.1 is not a CUDA GPU generation vLLM runs on" in result.err
    assert "--compute-capability" not in result.err


def test_the_test_model_under_a_file_says_the_parent_is_a_file(cli, tmp_path: Path):
    (tmp_path / "t.sh").write_text("#!/bin/sh\n")
    one_line(cli("testmodel", tmp_path / "t.sh" / "x"), f"{tmp_path / 't.sh'} is a file, not a directory")


def test_render_writes_a_dest_with_the_longest_legal_name(cli, tmp_path: Path):
    dest = tmp_path / ("d" * 250)
    result = cli("render", MODEL_REPOSITORY, dest, "--model", "tiny-llama")
    assert result.code == 0, result.err
    assert (dest / "tiny-llama" / "config.pbtxt").is_file()


@pytest.mark.parametrize("where", ["folder", "key"])
def test_a_newline_in_a_name_stays_on_one_line(cli, tmp_path: Path, where: str):
    repo = tmp_path / "repo"
    folder = repo / ("a\nb" if where == "folder" else EIGHT_B)
    shutil.copytree(MODEL_REPOSITORY / EIGHT_B, folder)
    if where == "key":
        engine = folder / "1" / "model.json"
        engine.write_text(json.dumps({**json.loads(engine.read_text()), "a\nb": 1}))
    result = cli("validate", repo)
    assert result.code == 2
    assert result.err.count("\n") == 1, result.err
    assert "a\\nb" in result.err


def test_version_goes_to_stdout():
    done = subprocess.run([TOOL, "--version"], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout.startswith("tritonfleet ") and done.stderr == ""


@pytest.mark.parametrize(
    "args",
    [
        ["validate", ""],
        ["testmodel", ""],
        ["engine-args", "--out-dir", ""],
        ["facts", "--query-csv", ""],
    ],
)
def test_an_empty_path_is_refused_not_taken_for_the_working_directory(cli, args: list[str]):
    result = cli(*args)
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "an empty path; give a file or folder" in result.err


def test_two_kinds_of_port_on_one_port_are_refused(cli):
    result = cli("smoke", "--target", "http://127.0.0.1:9?grpc=9&metrics=10")
    assert result.code == 2
    assert "the HTTP and gRPC ports are both 9" in result.err


def test_a_malformed_target_flag_is_named_before_the_repository_is_read(cli, tmp_path: Path):
    result = cli(
        "plan", tmp_path / "missing", "--host-facts", tmp_path / "none.json", "--concurrency", EIGHT_B
    )
    one_line(result, f"--concurrency: {EIGHT_B}: expected MODEL=N with N a positive whole number")


def test_a_closed_stdout_is_refused_before_anything_is_written(tmp_path: Path):
    dest = tmp_path / "out"
    done = subprocess.run(
        f'"{TOOL}" render "{MODEL_REPOSITORY}" "{dest}" >&-', shell=True, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr == "tritonfleet: error: stdout is closed; give it a file or /dev/null\n"
    assert not dest.exists()


def test_a_symlink_loop_in_the_source_is_a_short_line(cli, eight_b_repo: Path, tmp_path: Path):
    (eight_b_repo / EIGHT_B / "1" / "up").symlink_to("..")
    result = cli("render", eight_b_repo, tmp_path / "out")
    assert result.code == 2
    assert result.err.count("\n") == 1 and len(result.err) < 600, result.err
    assert not (tmp_path / "out").exists()


def test_a_key_given_twice_in_hf_config_json(cli, tmp_path: Path):
    config = tmp_path / "config.json"
    source = (MODEL_REPOSITORY / EIGHT_B / "hf-config.json").read_text()
    config.write_text(
        source.replace('"num_hidden_layers": 32', '"num_hidden_layers": 32, "num_hidden_layers": 3')
    )
    assert source.count('"num_hidden_layers": 32') == 1
    result = cli("memory", "estimate", "--model-config", config, "--gpu-total-gib", "80")
    one_line(result, 'malformed JSON: key "num_hidden_layers" appears twice (JSON keeps only the last)')
