"""Property tests: whatever a config.json or a setting holds, sizing either succeeds or raises one
InputError line, never another exception, and never slowly (hypothesis's deadline).

Values are arbitrary JSON (null, booleans, whole numbers of any size, floats with NaN and infinities,
strings, lists, objects), on their own, under the keys tritonfleet reads, and spliced into the real
configs of tests/fixtures (a key replaced, a key deleted, the text keys moved under text_config)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tritonfleet.errors import InputError
from tritonfleet.sizing import config as schema
from tritonfleet.sizing import memory

from helpers import ROOT

FIXTURES = ROOT / "tests" / "fixtures"
CONFIG_FILES = sorted([*(FIXTURES / "model-configs").glob("*/config.json"),
                       *(FIXTURES / "memory-logs" / "configs").glob("*/config.json")])  # fmt: skip
REAL = [json.loads(path.read_text()) for path in CONFIG_FILES]
GPU_TOTAL = 80 * memory.GiB
# Examples per property: enough to reach the nested keys, few enough that the file runs in seconds. No
# example database: nothing is written into the checkout.
PROPERTY = settings(
    max_examples=250, deadline=2000, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# The keys tritonfleet reads, at the top and in each nested block: where arbitrary values do damage.
TEXT_KEYS = sorted(schema.TextConfig.model_fields)
TOP_KEYS = sorted({*schema.ModelConfig.model_fields, "_load_in_4bit"} - {"load_in_4bit_private"})
NESTED_KEYS = {
    "rope_scaling": sorted(schema.RopeScaling.model_fields),
    "quantization_config": sorted({*schema.QuantizationConfig.model_fields, "_load_in_4bit"}),
    "vision_config": sorted(schema.VisionConfig.model_fields),
}
# Strings that mean something somewhere in a config, so that generated values get past the first check.
WORDS = [*memory.ARCHITECTURES, *memory.IMPLIED, "llama", "qwen2", "qwen3_moe", "gpt_oss", "opt", "phi",
         "bfloat16", "torch.float16", "half", "float", "int8", "yarn", "linear", "llama3",
         "sliding_attention", "full_attention", "gptq", "awq", "fp8", "mxfp4", "bitsandbytes",
         "compressed-tensors", "group", "NaN", ""]  # fmt: skip

numbers = st.one_of(
    st.integers(min_value=-4, max_value=300_000),
    st.sampled_from([0, 1, 2, 8, 64, 1024, 1025, 4096, 131072, 2**31, 2**63, 10**30, 10**400, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.5, 1.0, 8.0, 4096.0, 1e300, -0.0, math.nan, math.inf, -math.inf]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.sampled_from(WORDS), st.text(max_size=12))
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.one_of(st.sampled_from(TEXT_KEYS), st.text(max_size=8)), children, max_size=5),
    ),
    max_leaves=12,
)


def sized_or_refused(cfg: object) -> memory.Estimate | None:
    """shape_from_config, then estimate with default settings on an 80 GiB GPU: an estimate or None
    (an InputError of one line); any other exception propagates and fails the test."""
    try:
        shape = memory.shape_from_config(cfg, "cfg.json")
        result = memory.estimate(shape, memory.Settings(gpu_total_bytes=GPU_TOTAL), "cfg.json")
    except InputError as exc:
        assert type(exc) is InputError
        assert "\n" not in exc.line()
        assert exc.source == "cfg.json"
        return None
    # What it sized is a real answer: every part a whole number of bytes, the budget adding up.
    assert shape.layers <= schema.MAX_LAYERS and shape.kv_heads <= shape.heads
    assert result.weights > 0 and result.kv_bytes_per_token > 0 and result.kv_cache >= 0
    parts = result.weights + result.non_torch + result.activation + result.cuda_graph
    assert result.kv_cache == max(0, result.requested - parts)
    return result


@PROPERTY
@given(json_values)
def test_any_json_value_as_a_config(value):
    sized_or_refused(value)


@PROPERTY
@given(st.dictionaries(st.sampled_from(TOP_KEYS), json_values, max_size=12))
def test_any_values_under_the_keys_tritonfleet_reads(cfg):
    sized_or_refused(cfg)


def _replace(cfg: dict, data: st.DataObject) -> None:
    """One key, at the top or in a nested block, set to an arbitrary value (or to a read key's name)."""
    blocks = [
        cfg,
        *(v for k, v in cfg.items() if isinstance(v, dict) and k != "_implied_text_config_defaults"),
    ]
    block = data.draw(st.sampled_from(blocks))
    keys = sorted(block) + TEXT_KEYS if block is cfg or block is cfg.get("text_config") else sorted(block)
    for name, known in NESTED_KEYS.items():
        if block is cfg.get(name):
            keys = sorted(block) + known
    if keys:
        block[data.draw(st.sampled_from(keys))] = data.draw(json_values)


def _delete(cfg: dict, data: st.DataObject) -> None:
    blocks = [cfg, *(v for v in cfg.values() if isinstance(v, dict))]
    block = data.draw(st.sampled_from(blocks))
    if block:
        del block[data.draw(st.sampled_from(sorted(block)))]


def _nest(cfg: dict, data: st.DataObject | None = None) -> None:
    """The text keys moved under text_config, as a multimodal config has them."""
    if "text_config" not in cfg:
        text = {k: cfg.pop(k) for k in list(cfg) if k in schema.TextConfig.model_fields and k != "model_type"}
        cfg["text_config"] = text


MUTATIONS = [_replace, _replace, _replace, _delete, _nest]


@PROPERTY
@given(
    st.sampled_from(range(len(REAL))), st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=4), st.data()
)
def test_real_configs_with_arbitrary_changes(index: int, mutations, data):
    cfg = json.loads(json.dumps(REAL[index]))
    for mutate in mutations:
        mutate(cfg, data)
    sized_or_refused(cfg)


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.parent.name)
def test_every_real_config_still_sizes(path: Path):
    assert sized_or_refused(memory.read_config(path)) is not None


def test_the_nested_form_sizes_like_the_flat_one():
    # The mutation that moves keys under text_config keeps the model: the same shape, read from there.
    for cfg in REAL:
        if "text_config" in cfg:
            continue
        nested = json.loads(json.dumps(cfg))
        _nest(nested)
        assert memory.shape_from_config(nested) == memory.shape_from_config(cfg)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("configs")


@PROPERTY
@given(value=json_values, spaces=st.booleans())
def test_a_file_holding_any_json_text(folder: Path, value, spaces: bool):
    # json.dumps writes NaN and Infinity as Python does, and integers of any length: read_config refuses
    # them where they stand; whatever it returns holds only finite numbers.
    path = folder / "config.json"
    try:
        text = json.dumps(value, indent=2 if spaces else None)
    except ValueError:  # an integer with more digits than Python prints
        return
    path.write_text(text)
    try:
        data = memory.read_config(path)
    except InputError as exc:
        assert type(exc) is InputError and "\n" not in exc.line()
        return
    assert isinstance(data, dict)
    stack: list[object] = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            assert math.isfinite(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    sized_or_refused(data)


SHAPE = memory.shape_from_config(
    REAL[[p.parent.name for p in CONFIG_FILES].index("meta-llama__Llama-3.1-8B-Instruct")]
)
setting_values = st.one_of(
    json_values,
    st.sampled_from(["auto", "fp8", "float16", "native", "flashinfer", 10**400, -(10**400), 2**70, -(2**70)]),
)


@PROPERTY
@given(
    st.dictionaries(
        st.sampled_from(sorted(memory.CLI_ORIGINS)),
        st.one_of(setting_values, st.integers(min_value=1, max_value=200_000), st.floats(0.01, 1.0)),
        max_size=6,
    ),
    st.booleans(),
)
def test_any_settings(changes: dict, from_model_json: bool):
    values = {"gpu_total_bytes": GPU_TOTAL, **changes}
    origins = memory.engine_args_origins("model.json") if from_model_json else None
    try:
        e = memory.estimate(SHAPE, memory.Settings(**values), "cfg.json", origins)
    except InputError as exc:
        assert type(exc) is InputError and "\n" not in exc.line()
        # Named where it came from: the model's config, a model.json key, or the memory command's flag.
        if exc.source == "model.json":
            assert from_model_json and exc.field in memory.ENGINE_ARG_SETTINGS
        elif exc.source != "cfg.json":
            assert exc.source in {o.source for o in memory.CLI_ORIGINS.values()} and exc.field is None
            if from_model_json:
                assert exc.source in ("--gpu-total-gib", "--gpu-memory-utilization", "--sampler",
                                      "--compute-capability")  # fmt: skip
        return
    assert e.kv_cache >= 0 and e.requested > 0
