"""config.json checked at the edge (sizing/config.py), model families as one table (sizing/families.py),
settings errors named where they came from, and the calibration against the log dataset as a library.

Each bad-input case asserts that the error is an InputError (not a TypeError, KeyError, ...), the file
and the dotted field it names, and what it says is wrong."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import statistics
import time
from pathlib import Path

import pytest
import yaml

from tritonfleet.errors import InputError
from tritonfleet.sizing import calibration, families, memory
from tritonfleet.sizing import config as schema

from helpers import ROOT

CONFIGS = ROOT / "tests" / "fixtures" / "model-configs"
LOG_CONFIGS = ROOT / "tests" / "fixtures" / "memory-logs" / "configs"
LLAMA = "meta-llama__Llama-3.1-8B-Instruct"
MISTRAL3 = "mistralai__Mistral-Small-3.1-24B-Instruct-2503"  # text_config and vision_config
GEMMA3 = "google__gemma-3-12b-it"  # compact text_config with implied defaults
MIXTRAL = "mistralai__Mixtral-8x7B-Instruct-v0.1"
DEEPSEEK = "deepseek-ai__DeepSeek-V2-Lite-Chat"
QWEN3_MOE = "Qwen__Qwen3-30B-A3B"
GPT_OSS = "openai__gpt-oss-20b"
W4A16 = "RedHatAI__Meta-Llama-3.1-8B-Instruct-quantized.w4a16"
QWEN3 = "Qwen__Qwen3-8B"


def config(slug: str) -> dict:
    folder = CONFIGS / slug if (CONFIGS / slug).is_dir() else LOG_CONFIGS / slug
    return json.loads((folder / "config.json").read_text())


def refused(cfg: object) -> InputError:
    """The InputError shape_from_config raises for `cfg`; any other exception fails the test."""
    with pytest.raises(InputError) as caught:
        memory.shape_from_config(cfg, "cfg.json")
    error = caught.value
    assert type(error) is InputError
    assert error.source == "cfg.json"
    assert "\n" not in str(error)
    return error


def setting(path: str, value: object):
    """A change that sets a dotted key (creating nothing: every step but the last must exist)."""

    def change(cfg: dict) -> None:
        *parents, last = path.split(".")
        node = cfg
        for part in parents:
            node = node[part]
        node[last] = value

    return change


def removing(path: str):
    def change(cfg: dict) -> None:
        *parents, last = path.split(".")
        node = cfg
        for part in parents:
            node = node[part]
        del node[last]

    return change


NOT_WHOLE = "is not a positive whole number"
NOT_OBJECT = "is not an object"
NOT_DTYPE = "is not a dtype vLLM serves a model in"
TOO_MANY = "the most tritonfleet sizes"


def case(name: str, slug: str, key: str, value: object, message: str, field: str | None = None):
    """The config `slug` with `key` (dotted) set to `value`: refused naming `field` (`key` unless given)."""
    return pytest.param(slug, setting(key, value), field or key, message, id=name)


CASES = [
    # num_key_value_heads, at the top and under text_config
    case("kv-heads-string", LLAMA, "num_key_value_heads", "8", f"'8' {NOT_WHOLE}"),
    case("kv-heads-bool", LLAMA, "num_key_value_heads", True, f"True {NOT_WHOLE}"),
    case("kv-heads-float", LLAMA, "num_key_value_heads", 8.0, f"8.0 {NOT_WHOLE}"),
    case("kv-heads-list", LLAMA, "num_key_value_heads", [8], f"[8] {NOT_WHOLE}"),
    case("text-kv-heads-string", MISTRAL3, "text_config.num_key_value_heads", "8", f"'8' {NOT_WHOLE}"),
    case(
        "kv-heads-above-heads",
        LLAMA,
        "num_key_value_heads",
        64,
        "64 KV heads, more than the 32 attention heads",
    ),
    case(
        "kv-heads-not-dividing",
        LLAMA,
        "num_key_value_heads",
        6,
        "6 KV heads do not divide the 32 attention heads",
    ),
    case(
        "text-kv-heads-not-dividing",
        MISTRAL3,
        "text_config.num_key_value_heads",
        5,
        "5 KV heads do not divide the 32 attention heads",
    ),
    # architectures
    case(
        "architectures-string",
        LLAMA,
        "architectures",
        "LlamaForCausalLM",
        "'LlamaForCausalLM' is not a list of strings",
    ),
    case("architectures-number-entry", LLAMA, "architectures", [7], "entry 0, 7, is not a string"),
    case("architectures-object", LLAMA, "architectures", {"LlamaForCausalLM": 1}, "is not a list of strings"),
    case("architectures-empty", LLAMA, "architectures", [], "missing"),
    # quantization_config
    case("quantization-string", LLAMA, "quantization_config", "fp8", f"'fp8' {NOT_OBJECT}"),
    case("quantization-list", LLAMA, "quantization_config", [1], f"[1] {NOT_OBJECT}"),
    case(
        "quantization-method-number",
        LLAMA,
        "quantization_config",
        {"quant_method": 8},
        "8 is not a string",
        field="quantization_config.quant_method",
    ),
    case(
        "gptq-bits-word",
        LLAMA,
        "quantization_config",
        {"quant_method": "gptq", "bits": "four"},
        f"'four' {NOT_WHOLE}",
        field="quantization_config.bits",
    ),
    case(
        "gptq-bits-huge",
        LLAMA,
        "quantization_config",
        {"quant_method": "gptq", "bits": 64},
        f"64 is more than 16, {TOO_MANY}",
        field="quantization_config.bits",
    ),
    case(
        "gptq-group-string",
        LLAMA,
        "quantization_config",
        {"quant_method": "gptq", "group_size": "128"},
        "'128' is not a group size",
        field="quantization_config.group_size",
    ),
    case(
        "awq-w-bit-float",
        LLAMA,
        "quantization_config",
        {"quant_method": "awq", "w_bit": 4.0},
        f"4.0 {NOT_WHOLE}",
        field="quantization_config.w_bit",
    ),
    case(
        "bnb-flag-string",
        LLAMA,
        "quantization_config",
        {"quant_method": "bitsandbytes", "load_in_4bit": "yes"},
        "'yes' is not true or false",
        field="quantization_config.load_in_4bit",
    ),
    case(
        "bnb-private-flag-number",
        LLAMA,
        "quantization_config",
        {"quant_method": "bitsandbytes", "_load_in_4bit": 1},
        "1 is not true or false",
        field="quantization_config._load_in_4bit",
    ),
    case("compressed-groups-list", W4A16, "quantization_config.config_groups", ["group_0"], NOT_OBJECT),
    case("compressed-group-string", W4A16, "quantization_config.config_groups.group_0", "w4", NOT_OBJECT),
    case(
        "compressed-bits-word",
        W4A16,
        "quantization_config.config_groups.group_0.weights.num_bits",
        "four",
        f"'four' {NOT_WHOLE}",
    ),
    case(
        "compressed-weights-number",
        W4A16,
        "quantization_config.config_groups.group_0.weights",
        4,
        f"4 {NOT_OBJECT}",
    ),
    # rope_scaling
    case("rope-string", LLAMA, "rope_scaling", "llama3", f"'llama3' {NOT_OBJECT}"),
    case("rope-factor-string", DEEPSEEK, "rope_scaling.factor", "40", "'40' is not a number"),
    case("rope-factor-negative", DEEPSEEK, "rope_scaling.factor", -40, "-40 is not a positive finite number"),
    case("rope-factor-nan", DEEPSEEK, "rope_scaling.factor", math.nan, "nan is not a positive finite number"),
    case("rope-factor-inf", DEEPSEEK, "rope_scaling.factor", math.inf, "inf is not a positive finite number"),
    case("rope-factor-bool", DEEPSEEK, "rope_scaling.factor", True, "True is not a number"),
    case(
        "rope-factor-absurd",
        DEEPSEEK,
        "rope_scaling.factor",
        1e300,
        f"1e+300 is more than 67108864, {TOO_MANY}",
    ),
    case(
        "rope-factor-huge-int", DEEPSEEK, "rope_scaling.factor", 10**400, "<a 401-digit number> is more than"
    ),
    case(
        "rope-scaled-too-long",
        DEEPSEEK,
        "rope_scaling.factor",
        20000,
        "20000 scales the model to 8.192e+07 positions, outside 1 to 67108864",
    ),
    case(
        "rope-scaled-to-nothing",
        DEEPSEEK,
        "rope_scaling.factor",
        1e-9,
        "1e-09 scales the model to 4.096e-06 positions, outside 1 to 67108864",
    ),
    case("rope-type-number", DEEPSEEK, "rope_scaling.type", 2, "2 is not a string"),
    case(
        "rope-original-float",
        DEEPSEEK,
        "rope_scaling.original_max_position_embeddings",
        4096.0,
        f"4096.0 {NOT_WHOLE}",
    ),
    case("text-rope-factor-string", GEMMA3, "text_config.rope_scaling.factor", "8", "'8' is not a number"),
    # text_config
    case("text-config-string", MISTRAL3, "text_config", "mistral", f"'mistral' {NOT_OBJECT}"),
    case("text-config-list", MISTRAL3, "text_config", [], f"[] {NOT_OBJECT}"),
    case("text-config-number", MISTRAL3, "text_config", 5, f"5 {NOT_OBJECT}"),
    case("text-model-type-number", GEMMA3, "text_config.model_type", 3, "3 is not a string"),
    # torch_dtype and dtype
    case("dtype-int8", LLAMA, "torch_dtype", "int8", f"'int8' {NOT_DTYPE}"),
    case("dtype-fp8", LLAMA, "torch_dtype", "float8_e4m3fn", f"'float8_e4m3fn' {NOT_DTYPE}"),
    case("dtype-torch-int8", LLAMA, "torch_dtype", "torch.int8", f"'torch.int8' {NOT_DTYPE}"),
    case("dtype-number", LLAMA, "torch_dtype", 16, f"16 {NOT_DTYPE}"),
    case("dtype-case", LLAMA, "torch_dtype", "BF16", f"'BF16' {NOT_DTYPE}"),
    case("dtype-new-key", GPT_OSS, "dtype", "int4", f"'int4' {NOT_DTYPE}"),
    case("text-dtype", MISTRAL3, "text_config.torch_dtype", "float8_e5m2", NOT_DTYPE),
    # intermediate_size
    case("intermediate-string", LLAMA, "intermediate_size", "14336", f"'14336' {NOT_WHOLE}"),
    case("intermediate-negative", LLAMA, "intermediate_size", -1, f"-1 {NOT_WHOLE}"),
    case("intermediate-huge", LLAMA, "intermediate_size", 10**9, TOO_MANY),
    # experts
    case("local-experts-string", MIXTRAL, "num_local_experts", "8", "'8' is not a non-negative whole number"),
    case("experts-huge", QWEN3_MOE, "num_experts", 10**6, f"1000000 is more than 4096, {TOO_MANY}"),
    case(
        "routed-experts-negative", DEEPSEEK, "n_routed_experts", -64, "-64 is not a non-negative whole number"
    ),
    case("top-k-string", MIXTRAL, "num_experts_per_tok", "2", f"'2' {NOT_WHOLE}"),
    case("top-k-above-experts", MIXTRAL, "num_experts_per_tok", 9, "9 experts per token, of 8 experts"),
    case(
        "moe-intermediate-float",
        DEEPSEEK,
        "moe_intermediate_size",
        1408.5,
        "1408.5 is not a non-negative whole number",
    ),
    case(
        "shared-experts-bool", DEEPSEEK, "n_shared_experts", True, "True is not a non-negative whole number"
    ),
    case("dense-layers-above-layers", DEEPSEEK, "first_k_dense_replace", 28, "28 dense layers of 27 in all"),
    case(
        "mlp-only-layers-string", QWEN3_MOE, "mlp_only_layers", "0,1", "'0,1' is not a list of layer numbers"
    ),
    case(
        "mlp-only-layers-bool", QWEN3_MOE, "mlp_only_layers", [True], "entry 0, True, is not a layer number"
    ),
    # head_dim and heads
    case("head-dim-string", MISTRAL3, "text_config.head_dim", "128", f"'128' {NOT_WHOLE}"),
    case("head-dim-zero", MISTRAL3, "text_config.head_dim", 0, f"0 {NOT_WHOLE}"),
    case(
        "heads-leave-no-head-dim",
        LLAMA,
        "hidden_size",
        16,
        "32 heads leave no head dimension of hidden_size 16",
        field="num_attention_heads",
    ),
    case("heads-huge", LLAMA, "num_attention_heads", 10**7, TOO_MANY),
    # sliding windows and layer types
    case(
        "sliding-window-string", GPT_OSS, "sliding_window", "128", "'128' is not a non-negative whole number"
    ),
    case("use-sliding-window-string", QWEN3, "use_sliding_window", "false", "'false' is not true or false"),
    case(
        "max-window-layers-negative", QWEN3, "max_window_layers", -1, "-1 is not a non-negative whole number"
    ),
    case(
        "layer-types-string",
        GPT_OSS,
        "layer_types",
        "sliding_attention",
        "'sliding_attention' is not a list of strings",
    ),
    case("layer-types-numbers", GPT_OSS, "layer_types", [1, 2], "entry 0, 1, is not a string"),
    case("layer-types-too-few", GPT_OSS, "layer_types", ["sliding_attention"] * 3, "3 entries for 24 layers"),
    case("sliding-pattern-zero", GEMMA3, "text_config.sliding_window_pattern", 0, f"0 {NOT_WHOLE}"),
    # vision_config
    case("vision-string", MISTRAL3, "vision_config", "pixtral", f"'pixtral' {NOT_OBJECT}"),
    case("vision-hidden-string", MISTRAL3, "vision_config.hidden_size", "1024", f"'1024' {NOT_WHOLE}"),
    case("vision-layers-huge", MISTRAL3, "vision_config.num_hidden_layers", 10**8, TOO_MANY),
    case("vision-patch-float", MISTRAL3, "vision_config.patch_size", 14.0, f"14.0 {NOT_WHOLE}"),
    # counts: whole numbers, not booleans, within bounds
    case("layers-huge", LLAMA, "num_hidden_layers", 10**8, f"100000000 is more than 1024, {TOO_MANY}"),
    case("layers-bool", LLAMA, "num_hidden_layers", True, f"True {NOT_WHOLE}"),
    case("vocab-bool", LLAMA, "vocab_size", False, f"False {NOT_WHOLE}"),
    case("hidden-huge", LLAMA, "hidden_size", 10**9, TOO_MANY),
    case("vocab-huge", LLAMA, "vocab_size", 10**12, TOO_MANY),
    case("hidden-zero", LLAMA, "hidden_size", 0, f"0 {NOT_WHOLE}"),
    case("kv-lora-string", DEEPSEEK, "kv_lora_rank", "512", "'512' is not a non-negative whole number"),
    case("tie-string", LLAMA, "tie_word_embeddings", "true", "'true' is not true or false"),
    case("attention-bias-number", LLAMA, "attention_bias", 1, "1 is not true or false"),
    case("model-type-number", LLAMA, "model_type", 5, "5 is not a string"),
    # the longest sequence
    case("max-position-float", LLAMA, "max_position_embeddings", 4096.0, f"4096.0 {NOT_WHOLE}"),
    case("max-position-bool", LLAMA, "max_position_embeddings", True, f"True {NOT_WHOLE}"),
    case(
        "max-position-huge",
        LLAMA,
        "max_position_embeddings",
        10**12,
        f"1000000000000 is more than {schema.MAX_POSITIONS}, {TOO_MANY}",
    ),
    case("seq-length-string", LLAMA, "seq_length", "4096", f"'4096' {NOT_WHOLE}"),
    pytest.param(
        MIXTRAL, removing("num_experts_per_tok"), "num_experts_per_tok", "missing", id="top-k-missing"
    ),
]


@pytest.mark.parametrize(("slug", "change", "field", "message"), CASES)
def test_a_wrong_value_is_one_input_error_naming_its_field(slug, change, field, message):
    cfg = config(slug)
    memory.shape_from_config(copy.deepcopy(cfg), "cfg.json")  # the unchanged config sizes
    change(cfg)
    error = refused(cfg)
    assert error.field == field
    assert message in error.message


def test_a_float_max_position_is_not_called_missing():
    cfg = config(LLAMA)
    cfg["max_position_embeddings"] = 4096.0
    error = refused(cfg)
    assert error.line() == "cfg.json: max_position_embeddings: 4096.0 is not a positive whole number"


def test_a_huge_layer_count_fails_at_once():
    cfg = config(LLAMA)
    cfg["num_hidden_layers"] = 10**8
    start = time.monotonic()
    error = refused(cfg)
    assert time.monotonic() - start < 1.0
    assert error.field == "num_hidden_layers"


def test_the_largest_counts_allowed_still_size_quickly():
    # At every bound at once the estimate is still a matter of milliseconds, not minutes.
    cfg = config(MIXTRAL)
    cfg.update(
        num_hidden_layers=schema.MAX_LAYERS,
        num_local_experts=schema.MAX_EXPERTS,
        num_experts_per_tok=schema.MAX_EXPERTS,
        vocab_size=schema.MAX_VOCAB,
    )
    start = time.monotonic()
    shape = memory.shape_from_config(cfg, "cfg.json")
    e = memory.estimate(shape, memory.Settings(gpu_total_bytes=80 * memory.GiB))
    assert time.monotonic() - start < 1.0
    assert shape.layers == schema.MAX_LAYERS
    assert e.kv_cache == 0  # and it does not fit


@pytest.mark.parametrize("value", [None, [], "config", 5, [{"architectures": ["LlamaForCausalLM"]}]])
def test_a_config_that_is_not_an_object(value):
    error = refused(value)
    assert error.field is None
    assert error.message == "not a JSON object"


@pytest.mark.parametrize(
    ("dtype", "served"),
    [
        ("torch.float16", "float16"),
        ("half", "half"),
        ("float", "bfloat16"),
        ("torch.float32", "bfloat16"),
        ("bfloat16", "bfloat16"),
    ],
)
def test_the_float_dtypes_vllm_serves_are_accepted(dtype: str, served: str):
    cfg = config(LLAMA)
    cfg["torch_dtype"] = dtype
    shape = memory.shape_from_config(cfg)
    assert memory.model_dtype(shape, "auto") == served
    assert memory.estimate(shape, memory.Settings(gpu_total_bytes=80 * memory.GiB)).weights > 0


def test_null_is_an_unset_key():
    cfg = config(W4A16)
    assert memory.shape_from_config(cfg).quantization is not None
    cfg.update(num_key_value_heads=None, head_dim=None, quantization_config=None, rope_scaling=None)
    shape = memory.shape_from_config(cfg)
    assert (shape.kv_heads, shape.head_dim, shape.quantization) == (32, 128, None)


def test_keys_tritonfleet_does_not_read_are_kept_unchecked():
    cfg = config(LLAMA)
    cfg.update(eos_token_id=[1, "x", None], rope_theta="big", hidden_act=5, some_new_key={"a": [math.nan]})
    assert memory.shape_from_config(cfg) == memory.shape_from_config(config(LLAMA))


def test_a_schema_once_parsed_is_not_parsed_again():
    parsed = schema.parse(config(GEMMA3), "cfg.json")
    assert isinstance(parsed.text_config, schema.TextConfig)
    assert memory.shape_from_config(parsed) == memory.shape_from_config(config(GEMMA3))


# --- read_config: every way a file can be wrong is one line ----------------------------------


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ('{"rope_scaling": {"factor": NaN}}', "rope_scaling.factor", "NaN is not a JSON number"),
        ('{"a": [1, {"b": Infinity}]}', "a.1.b", "Infinity is not a JSON number"),
        ('{"a": -Infinity}', "a", "-Infinity is not a JSON number"),
        ('{"hidden_size": 1e400}', "hidden_size", "1e400 is too large a number"),
        ('{"num_hidden_layers": ' + "9" * 60 + "}", "num_hidden_layers", "has 60 digits"),
        ('{"n": ' + "9" * 5000 + "}", "n", "has 5000 digits"),
        ("[1, 2]", None, "not a JSON object"),
        ('"config"', None, "not a JSON object"),
        ("{not json", "line 1:2", "malformed JSON: Expecting property name"),
        ("", "line 1:1", "malformed JSON: Expecting value"),
        ("[" * 100_000 + "]" * 100_000, None, "malformed JSON: nested too deeply"),
        ('{"model_type": "\\ud800"}', "model_type", "a \\u escape that is not a character"),
        ('{"a": 1, "a": 2}', None, 'malformed JSON: key "a" appears twice'),
    ],
    ids=[
        "nan",
        "infinity-nested",
        "minus-infinity",
        "float-overflow",
        "long-int",
        "very-long-int",
        "array",
        "string",
        "broken",
        "empty",
        "deep",
        "lone-surrogate",
        "key-twice",
    ],
)
def test_json_that_is_not_a_config_is_one_line(tmp_path: Path, text: str, field, message: str):
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        memory.read_config(path)
    assert type(caught.value) is InputError
    assert (caught.value.source, caught.value.field) == (str(path), field)
    assert message in caught.value.message
    assert "\n" not in caught.value.line()


def test_a_real_config_reads_as_before(tmp_path: Path):
    assert memory.read_config(CONFIGS / LLAMA) == config(LLAMA)  # a folder: its config.json
    assert memory.read_config(str(CONFIGS / LLAMA / "config.json")) == config(LLAMA)


def _unreadable(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "config.json"
    if kind == "missing":
        pass
    elif kind == "dangling":
        path.symlink_to(tmp_path / "nowhere.json")
    elif kind == "loop":
        path.symlink_to(path)
    elif kind == "not-utf8":
        path.write_bytes(b'{"a": "\xff\xfe"}')
    elif kind == "directory":
        (tmp_path / "model").mkdir()
        (tmp_path / "model" / "config.json").mkdir()
        return tmp_path / "model"
    return path


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("missing", "not found"),
        ("dangling", "not found (dangling symlink)"),
        ("loop", "symlink loop"),
        ("not-utf8", "not UTF-8 text (byte 7)"),
        ("directory", "a directory"),
    ],
)
def test_a_config_file_that_cannot_be_read_is_one_line(tmp_path: Path, kind: str, reason: str):
    path = _unreadable(tmp_path, kind)
    with pytest.raises(InputError) as caught:
        memory.read_config(path)
    file = path / "config.json" if kind == "directory" else path
    assert caught.value.line() == f"{file}: cannot read the model config: {reason}"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_a_config_without_read_permission_is_one_line(tmp_path: Path):
    path = tmp_path / "config.json"
    path.write_text("{}")
    path.chmod(0)
    with pytest.raises(InputError) as caught:
        memory.read_config(path)
    assert caught.value.line() == f"{path}: cannot read the model config: Permission denied"


# --- settings: errors named where the setting came from --------------------------------------


def llama_shape() -> memory.Shape:
    return memory.shape_from_config(config(LLAMA))


def settings_error(origins=None, **settings) -> InputError:
    settings.setdefault("gpu_total_bytes", 80 * memory.GiB)
    with pytest.raises(InputError) as caught:
        memory.estimate(llama_shape(), memory.Settings(**settings), "cfg.json", origins)
    assert type(caught.value) is InputError
    return caught.value


@pytest.mark.parametrize(
    ("settings", "cli_line", "model_json_line"),
    [
        (
            {"max_model_len": 262144},
            "--max-model-len: 262144 exceeds the model's maximum of 131072 tokens",
            "model.json: max_model_len: 262144 exceeds the model's maximum of 131072 tokens",
        ),
        (
            {"max_model_len": -5},
            "--max-model-len: -5 is not a positive number of tokens",
            "model.json: max_model_len: -5 is not a positive number of tokens",
        ),
        (
            {"max_model_len": 4096.0},
            "--max-model-len: 4096.0 is not a whole number of tokens",
            "model.json: max_model_len: 4096.0 is not a whole number of tokens",
        ),
        (
            {"max_model_len": "4096"},
            "--max-model-len: '4096' is not a whole number of tokens",
            "model.json: max_model_len: '4096' is not a whole number of tokens",
        ),
        (
            {"tensor_parallel_size": True},
            "--tensor-parallel-size: True is not a positive whole number",
            "model.json: tensor_parallel_size: True is not a positive whole number",
        ),
        (
            {"tensor_parallel_size": 4096},
            "--tensor-parallel-size: 4096 is more than 1024, the most tritonfleet sizes",
            "model.json: tensor_parallel_size: 4096 is more than 1024, the most tritonfleet sizes",
        ),
        (
            {"pipeline_parallel_size": 64},
            "--pipeline-parallel-size: 64 stages for 32 layers",
            "model.json: pipeline_parallel_size: 64 stages for 32 layers",
        ),
        (
            {"max_num_seqs": 0},
            "--max-num-seqs: 0 is not a positive whole number",
            "model.json: max_num_seqs: 0 is not a positive whole number",
        ),
        (
            {"max_num_batched_tokens": 0},
            "--max-num-batched-tokens: 0 is not positive",
            "model.json: max_num_batched_tokens: 0 is not positive",
        ),
        (
            {"max_num_batched_tokens": 8192.5},
            "--max-num-batched-tokens: 8192.5 is not a whole number of tokens",
            "model.json: max_num_batched_tokens: 8192.5 is not a whole number of tokens",
        ),
        (
            {"dtype": "float8"},
            "--dtype: 'float8' is not a dtype vLLM serves",
            "model.json: dtype: 'float8' is not a dtype vLLM serves",
        ),
        (
            {"kv_cache_dtype": "int8"},
            "--kv-cache-dtype: 'int8' is not auto or fp8",
            "model.json: kv_cache_dtype: 'int8' is not auto or fp8",
        ),
        (
            {"enforce_eager": "yes"},
            "--enforce-eager: 'yes' is not true or false",
            "model.json: enforce_eager: 'yes' is not true or false",
        ),
    ],
    ids=[
        "too-long",
        "negative-len",
        "float-len",
        "string-len",
        "tp-bool",
        "tp-huge",
        "pp-over-layers",
        "no-seqs",
        "no-batched",
        "float-batched",
        "dtype",
        "kv-dtype",
        "eager",
    ],
)
def test_a_setting_is_named_by_where_it_came_from(settings: dict, cli_line: str, model_json_line: str):
    assert settings_error(**settings).line().startswith(cli_line)
    origins = memory.engine_args_origins("model.json")
    assert settings_error(origins, **settings).line().startswith(model_json_line)


@pytest.mark.parametrize(
    ("total", "message"),
    [
        (math.nan, "nan is not a positive size"),
        (-1 * memory.GiB, "-1 is not a positive size"),
        (math.inf, "inf GiB is more than 16384 GiB"),
        (1e300, "9.31323e+290 GiB is more than 16384 GiB"),
        (10**400, "<a 401-digit number> bytes is more than 16384 GiB"),
        (17 << 40, "17408 GiB is more than 16384 GiB"),
        ("80", "'80' is not a size"),
    ],
)
def test_a_gpu_total_must_be_a_finite_sane_size(total, message: str):
    error = settings_error(gpu_total_bytes=total)
    assert (error.source, error.field) == ("--gpu-total-gib", None)
    assert error.message.startswith(message)


def test_a_gpu_total_from_a_float_of_gib_is_sized():
    e = memory.estimate(
        llama_shape(), memory.Settings(gpu_total_bytes=79.18 * memory.GiB, max_model_len=8192)
    )
    assert e.requested == math.ceil(79.18 * memory.GiB * memory.DEFAULT_GPU_MEMORY_UTILIZATION)
    assert e.kv_cache > 0


@pytest.mark.parametrize(
    ("settings", "line"),
    [
        ({"gpu_memory_utilization": math.nan}, "--gpu-memory-utilization: nan is outside (0, 1]"),
        ({"gpu_memory_utilization": math.inf}, "--gpu-memory-utilization: inf is outside (0, 1]"),
        ({"gpu_memory_utilization": "0.9"}, "--gpu-memory-utilization: '0.9' is not a number"),
        ({"compute_capability": math.nan}, "--compute-capability: nan is not a CUDA GPU generation"),
        ({"compute_capability": None}, "--compute-capability: None is not a number"),
        ({"sampler": ["native"]}, "--sampler: ['native'] is not flashinfer or native"),
    ],
)
def test_non_finite_or_mistyped_floats_are_refused(settings: dict, line: str):
    assert settings_error(**settings).line().startswith(line)


def test_origins_name_only_the_settings_they_list():
    # The planner sets the GPU total itself: that one keeps its default name.
    origins = memory.engine_args_origins("m/1/model.json")
    assert settings_error(origins, gpu_total_bytes=math.nan).line().startswith("--gpu-total-gib: ")
    custom = {"gpu_total_bytes": memory.Origin("host-facts.json", "gpus.0.memory_usable_bytes")}
    line = settings_error(custom, gpu_total_bytes=-5).line()
    assert line.startswith("host-facts.json: gpus.0.memory_usable_bytes: ")


# --- model families: one table ---------------------------------------------------------------


def test_every_architecture_and_model_type_has_exactly_one_family():
    architectures = [a for f in families.FAMILIES for a in f.architectures]
    model_types = [t for f in families.FAMILIES for t in f.model_types]
    assert len(architectures) == len(set(architectures)) == len(families.BY_ARCHITECTURE)
    assert len(model_types) == len(set(model_types)) == len(families.BY_MODEL_TYPE)
    assert families.for_model_type("no-such-type") is families.NO_QUIRKS


def test_the_old_names_are_views_of_the_table():
    assert memory.ARCHITECTURES["PhiForCausalLM"] is False
    assert memory.ARCHITECTURES["OPTForCausalLM"] is False
    assert memory.ARCHITECTURES["LlamaForCausalLM"] is True
    assert set(memory.ARCHITECTURES) == set(families.BY_ARCHITECTURE)
    assert memory.IMPLIED["gemma3_text"]["head_dim"] == 256
    assert memory.IMPLIED["gemma2"] == {"tie_word_embeddings": True}
    with pytest.raises(TypeError):
        memory.IMPLIED["gemma2"]["tie_word_embeddings"] = False  # type: ignore[index]


def test_a_family_quirk_changes_exactly_its_parameters():
    # The same Llama layout under qwen2's model_type: q/k/v biases in every layer, nothing else.
    cfg = config(LLAMA)
    llama = memory.shape_from_config(cfg)
    qwen_like = memory.shape_from_config({**cfg, "model_type": "qwen2"})
    biases = llama.layers * (llama.heads + 2 * llama.kv_heads) * llama.head_dim
    assert memory.parameter_count(qwen_like) - memory.parameter_count(llama) == biases
    # qwen3: a norm over each query and key head instead.
    qwen3 = memory.shape_from_config({**cfg, "model_type": "qwen3"})
    assert memory.parameter_count(qwen3) - memory.parameter_count(llama) == llama.layers * 2 * llama.head_dim


def test_adding_an_architecture_is_one_entry(monkeypatch):
    cfg = {**config(LLAMA), "architectures": ["NewForCausalLM"], "model_type": "new"}
    assert refused(cfg).field == "architectures"
    new = families.Family("new", ("NewForCausalLM",), ("new",), out_bias=True, lm_head_bias=True)
    table = (*families.FAMILIES, new)
    monkeypatch.setattr(families, "BY_ARCHITECTURE", {a: f for f in table for a in f.architectures})
    monkeypatch.setattr(families, "BY_MODEL_TYPE", {t: f for f in table for t in f.model_types})
    shape = memory.shape_from_config(cfg)
    llama = memory.shape_from_config(config(LLAMA))
    # An output-projection bias per layer and an lm_head bias, on top of Llama's parameters.
    extra = memory.parameter_count(shape) - memory.parameter_count(llama)
    assert extra == llama.layers * llama.hidden + llama.vocab


def test_sliding_rules_follow_the_family():
    gemma2 = memory.shape_from_config(config("google__gemma-2-9b-it"))
    assert gemma2.sliding_layers == gemma2.layers // 2
    gemma3 = memory.shape_from_config(config(GEMMA3))
    assert gemma3.sliding_layers == 48 - 48 // 6
    # Qwen: from max_window_layers on, once use_sliding_window is set.
    qwen = config("Qwen__Qwen2.5-7B-Instruct")
    qwen.update(use_sliding_window=True, max_window_layers=20, sliding_window=4096)
    assert memory.shape_from_config(qwen).sliding_layers == qwen["num_hidden_layers"] - 20
    # Mistral-style families: every layer, unless layer_types lists them.
    llama = {**config(LLAMA), "sliding_window": 4096}
    assert memory.shape_from_config(llama).sliding_layers == 32
    llama["layer_types"] = ["sliding_attention", "full_attention"] * 16
    assert memory.shape_from_config(llama).sliding_layers == 16


# --- calibration: the log dataset scored as a library ----------------------------------------


ROWS = yaml.safe_load((ROOT / "tests" / "fixtures" / "memory-logs" / "rows.yaml").read_text())


def test_rows_without_a_config_are_skipped_with_the_reason():
    folders = (CONFIGS, LOG_CONFIGS)
    scored, skipped = calibration.scores(ROWS, folders)
    absent = [r["id"] for r in ROWS if not (r["config"] and any((d / r["config"]).is_dir() for d in folders))]
    assert absent
    assert [entry for entry in skipped if entry.endswith(" (no config here)")] == [
        f"{row} (no config here)" for row in absent
    ]
    assert len(scored) + len(skipped) == len(ROWS)
    # Without a config folder no row is scored, and each says why.
    none, skipped_all = calibration.scores(ROWS, ())
    assert none == [] and skipped_all == [f"{r['id']} (no config here)" for r in ROWS]


def test_the_medians_are_the_medians_of_the_row_errors():
    scored, _ = calibration.scores(ROWS, (CONFIGS, LOG_CONFIGS))
    found = {(m.figure, m.group): m for m in calibration.medians(scored)}
    kv = [e for s in scored if s.scope is None and (e := s.error("kv")) is not None]
    m = found[("kv", "all")]
    assert m.rows == len(kv)
    assert m.median_abs == statistics.median(abs(e) for e in kv)
    assert m.median == statistics.median(kv)
    assert m.max_abs == max(abs(e) for e in kv)
    assert m.median_abs == calibration.kv_target(scored)[0]
    fitted = [s for s in scored if s.fit and s.scope is None and s.error("kv") is not None]
    assert found[("kv", "not fitted")].rows == len(kv) - len(fitted)


def test_each_accounting_takes_its_own_share_out_of_the_kv_budget():
    e = memory.estimate(llama_shape(), memory.Settings(gpu_total_bytes=80 * memory.GiB, max_model_len=8192))
    base = e.requested - e.weights - e.non_torch - e.activation
    assert calibration.kv_budget(e, ">=0.20", 1) == base - e.cuda_graph == e.kv_cache
    # Before 0.20 the graphs were captured after profiling: their leftovers were not non-torch memory.
    before = base + memory.NON_TORCH_BYTES - calibration.NON_TORCH_BEFORE_GRAPH_PROFILING
    assert memory.NON_TORCH_BYTES > calibration.NON_TORCH_BEFORE_GRAPH_PROFILING
    assert calibration.kv_budget(e, "0.6.5-0.10", 1) == before
    assert calibration.kv_budget(e, "0.11-0.19", 2) == before
    assert calibration.kv_budget(e, "<=0.6.4", 1) == before - memory.CUDA_CONTEXT_BYTES
    assert calibration.kv_budget(e, "<=0.6.4", 2) == before - memory.CUDA_CONTEXT_BYTES - memory.NCCL_BYTES


def test_a_score_is_a_plain_record():
    scored, _ = calibration.scores(ROWS, (CONFIGS, LOG_CONFIGS))
    first = scored[0]
    assert dataclasses.is_dataclass(first)
    est, real = first.figures["weights"]
    assert first.error("weights") == pytest.approx((est - real) / real * 100)
    assert calibration.error_percent(1.0, 0.0) is None
    assert calibration.error_percent(1.0, None) is None
