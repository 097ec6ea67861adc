"""The memory estimate from config.json: parameters, weights per GPU, KV bytes per token, the vLLM
budget, and one-line errors for bad input. Configs are the public files in tests/fixtures/model-configs
(INDEX.md there says which are verbatim and gives reference parameter counts)."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import pytest
import yaml

from tritonfleet.sizing import calibration, memory

from helpers import ROOT

CONFIGS = ROOT / "tests" / "fixtures" / "model-configs"
H100_GIB = 85_017_493_504 / memory.GiB  # what CUDA reports for an H100 80GB HBM3 (tests/fixtures/gpu-hosts)


def config(slug: str) -> dict:
    return json.loads((CONFIGS / slug / "config.json").read_text())


def shape(slug: str) -> memory.Shape:
    return memory.shape_from_config(config(slug), slug)


def reference_counts() -> dict[str, float]:
    """INDEX.md's parameter counts (billions), computed there per architecture and cross-checked."""
    counts = {}
    for line in (CONFIGS / "INDEX.md").read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 3 and "__" in cells[1] and re.fullmatch(r"[\d.]+", cells[3]):
            counts[cells[1]] = float(cells[3])
    return counts


@pytest.mark.parametrize("slug", sorted(reference_counts()))
def test_parameter_count_matches_the_index(slug: str):
    counted = memory.parameter_count(shape(slug)) / 1e9
    assert counted == pytest.approx(reference_counts()[slug], rel=0.005)


def test_llama_8b_parameters_exactly():
    # 8,030,261,248 is also the sum of the safetensors shards' tensors.
    assert memory.parameter_count(shape("meta-llama__Llama-3.1-8B-Instruct")) == 8_030_261_248


LOG_CONFIGS = ROOT / "tests" / "fixtures" / "memory-logs" / "configs"


def log_shape(slug: str) -> memory.Shape:
    return memory.shape_from_config(memory.read_config(LOG_CONFIGS / slug), slug)


@pytest.mark.parametrize(
    ("slug", "billions"), [("openai__gpt-oss-20b", 20.91), ("openai__gpt-oss-120b", 116.83)]
)
def test_gpt_oss_parameters_match_the_model_card(slug: str, billions: float):
    # OpenAI's model card: 20.91B and 116.83B parameters in total (attention sinks and biases included).
    assert memory.parameter_count(log_shape(slug)) / 1e9 == pytest.approx(billions, abs=0.005)


@pytest.mark.parametrize(
    ("slug", "tp", "capability", "logged_gib"),
    [
        ("openai__gpt-oss-20b", 1, 9.0, 13.47),  # H100, Triton MoE kernel (llm-d)
        ("openai__gpt-oss-120b", 1, 9.0, 64.38),  # H100 (llm-d)
        ("openai__gpt-oss-20b", 1, 8.0, 13.72),  # A100, Marlin (myoceane.fr)
        ("openai__gpt-oss-120b", 4, 8.0, 17.22),  # 4 x A100, Marlin, per rank (dennislee22)
    ],
)
def test_mxfp4_experts_are_sized_by_the_gpus_kernel_layout(slug, tp, capability, logged_gib):
    s = log_shape(slug)
    assert s.quantization is not None and s.quantization.experts_only
    weights = memory.weights_bytes(s, tp, 1, 2, capability) / memory.GiB
    assert weights == pytest.approx(logged_gib, rel=0.005)
    # The other generation's kernel lays the same experts out differently.
    other_generation = 8.0 if capability >= 9.0 else 9.0
    other = memory.weights_bytes(s, tp, 1, 2, other_generation) / memory.GiB
    assert abs(other - logged_gib) / logged_gib > 0.01


@pytest.mark.parametrize(
    ("slug", "quantization", "logged_gib"),
    [
        # kaitchup/Phi-4-AutoRound-GPTQ-4bit: "Loading model weights took 8.5107 GB" (david-share row).
        ("microsoft__phi-4", {"quant_method": "gptq", "bits": 4, "group_size": 128, "sym": True}, 8.5107),
        # Qwen2.5-7B-Instruct-bnb-4bit (NF4, double quantization): "took 5.2032 GB" (i13882 row).
        (
            "Qwen__Qwen2.5-7B-Instruct",
            {"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
             "bnb_4bit_use_double_quant": True},
            5.2032,
        ),
    ],
    ids=["gptq", "bnb-nf4"],
)  # fmt: skip
def test_4bit_checkpoints_match_their_logged_weights(slug: str, quantization: dict, logged_gib: float):
    # The base model's config with the quantization block these checkpoints publish (their own
    # config.json files are not available here, so the dataset leaves those rows unscored).
    quantized = {**config(slug), "quantization_config": quantization}
    assert weights_gib(slug, cfg=quantized) == pytest.approx(logged_gib, rel=0.01)
    assert weights_gib(slug, cfg=quantized) < weights_gib(slug) / 2.5


def test_blackwell_pads_mxfp4_experts_in_both_dimensions():
    s = log_shape("openai__gpt-oss-20b")
    hopper, blackwell = (memory.weights_bytes(s, 1, 1, 2, cc) for cc in (9.0, 10.0))
    # 3072 x 3072 per matrix instead of 2880 x 3072: 24 layers x 32 experts x 3 matrices x 192 x 3072.
    assert blackwell - hopper == pytest.approx(24 * 32 * 3 * 192 * 3072 * (0.5 + 1 / 32))


def test_gpt_oss_alternates_sliding_and_full_attention():
    s = log_shape("openai__gpt-oss-20b")
    assert (s.sliding_layers, s.sliding_window) == (12, 128)
    per_token = memory.kv_bytes_per_token(s, 1, 1, 2)
    assert per_token.full == per_token.sliding == 12 * 2 * 8 * 64 * 2


# --- weights ---------------------------------------------------------------------------------


def weights_gib(slug: str, tp: int = 1, pp: int = 1, cfg: dict | None = None) -> float:
    s = memory.shape_from_config(cfg or config(slug), slug)
    return memory.weights_bytes(s, tp, pp, 2) / memory.GiB


def test_bf16_weights_match_what_vllm_loads():
    # vLLM's "model weights take 14.96GiB" for Meta-Llama-3-8B (vllm-project/vllm#10511).
    assert weights_gib("meta-llama__Meta-Llama-3-8B") == pytest.approx(14.96, abs=0.01)
    # Llama 3.1's 128k rope cache adds 32 MiB.
    assert weights_gib("meta-llama__Llama-3.1-8B-Instruct") == pytest.approx(14.99, abs=0.01)


def test_tensor_parallel_splits_weights_and_pipeline_parallel_splits_layers():
    one = weights_gib("meta-llama__Llama-3.1-8B-Instruct")
    two = weights_gib("meta-llama__Llama-3.1-8B-Instruct", tp=2)
    assert two == pytest.approx(one / 2, rel=0.01)
    # PP 2: each stage holds 16 layers plus the embeddings or the lm_head.
    stage = weights_gib("meta-llama__Llama-3.1-8B-Instruct", pp=2)
    assert one / 2 < stage < one / 2 + 1.0


def test_fp8_and_w4a16_quantize_only_the_linear_layers():
    bf16 = weights_gib("meta-llama__Llama-3.1-8B-Instruct")
    fp8 = weights_gib("RedHatAI__Meta-Llama-3.1-8B-Instruct-FP8")
    w4 = weights_gib("RedHatAI__Meta-Llama-3.1-8B-Instruct-quantized.w4a16")
    # Linear parameters: 8,030,261,248 minus embeddings and lm_head (2 x 128,256 x 4,096) minus the
    # 65 RMSNorm vectors (65 x 4,096). They drop from 2 bytes to 1 (FP8), or to 0.5 plus a bf16 scale
    # per group of 128 (w4a16); embeddings, lm_head and norms stay bf16.
    linear = 8_030_261_248 - 2 * 128_256 * 4_096 - 65 * 4_096
    assert fp8 == pytest.approx(bf16 - linear * 1 / memory.GiB, abs=0.001)
    assert w4 == pytest.approx(bf16 - linear * (2 - 0.5 - 2 / 128) / memory.GiB, abs=0.001)


def test_moe_weights_count_every_expert():
    mixtral = weights_gib("mistralai__Mixtral-8x7B-Instruct-v0.1")
    assert mixtral == pytest.approx(46.703e9 * 2 / memory.GiB, rel=0.01)
    assert weights_gib("mistralai__Mixtral-8x7B-Instruct-v0.1", tp=4) == pytest.approx(mixtral / 4, rel=0.01)


def test_70b_bf16_at_tp4_as_in_model_repository():
    # The bf16 Llama 3.3 70B config is the FP8 file without its quantization_config (INDEX.md).
    cfg = config("RedHatAI__Llama-3.3-70B-Instruct-FP8-dynamic")
    del cfg["quantization_config"]
    assert weights_gib("llama-3.3-70b", tp=4, cfg=cfg) == pytest.approx(
        70.554e9 * 2 / 4 / memory.GiB, rel=0.01
    )


# --- KV cache per token ----------------------------------------------------------------------


def kv(slug: str, tp: int = 1, pp: int = 1, kv_bytes: int = 2) -> memory.KvPerToken:
    return memory.kv_bytes_per_token(shape(slug), tp, pp, kv_bytes)


def test_gqa_kv_bytes_per_token():
    # 2 (K and V) x 32 layers x 8 KV heads x 128 dims x 2 bytes.
    assert kv("meta-llama__Llama-3.1-8B-Instruct").total == 131_072
    assert kv("meta-llama__Llama-3.1-8B-Instruct", tp=2).total == 65_536
    # Past 8 ranks the KV heads are replicated: one head per rank.
    assert kv("meta-llama__Llama-3.1-8B-Instruct", tp=16).total == 16_384
    # MHA: CodeLlama has as many KV heads as query heads.
    assert kv("codellama__CodeLlama-7b-hf").total == 2 * 32 * 32 * 128 * 2


def test_fp8_kv_cache_halves_it():
    assert kv("meta-llama__Llama-3.1-8B-Instruct", kv_bytes=1).total == 65_536


def test_mla_caches_the_latent_and_is_not_split_by_tp():
    # DeepSeek-V2-Lite: 27 layers x (kv_lora_rank 512 + rope 64) x 2 bytes.
    assert kv("deepseek-ai__DeepSeek-V2-Lite-Chat").total == 27 * 576 * 2
    assert kv("deepseek-ai__DeepSeek-V2-Lite-Chat", tp=4).total == 27 * 576 * 2


def test_pipeline_parallel_splits_layers():
    assert kv("meta-llama__Llama-3.1-8B-Instruct", pp=2).total == 131_072 // 2


def test_sliding_window_layers_are_told_apart():
    gemma2 = kv("google__gemma-2-9b-it")
    assert gemma2.full == gemma2.sliding  # every other layer is local
    gemma3 = kv("google__gemma-3-12b-it")  # 5 local : 1 global, from the compact config's defaults
    assert gemma3.sliding == 5 * gemma3.full


def test_moe_kv_follows_attention_not_experts():
    assert kv("Qwen__Qwen3-30B-A3B").total == 2 * 48 * 4 * 128 * 2


# --- the estimate ----------------------------------------------------------------------------


def estimate(slug: str, **settings) -> memory.Estimate:
    total = settings.pop("gpu_total_gib", H100_GIB)
    return memory.estimate(shape(slug), memory.Settings(gpu_total_bytes=int(total * memory.GiB), **settings))


def test_the_budget_adds_up():
    e = estimate("meta-llama__Llama-3.1-8B-Instruct", gpu_memory_utilization=0.9, max_model_len=8192)
    assert e.requested == int(85_017_493_504 * 0.9) + 1
    assert e.kv_cache == e.requested - e.weights - e.non_torch - e.activation - e.cuda_graph
    assert e.kv_cache_tokens == e.kv_cache // (131_072 * 16) * 16
    assert e.max_concurrency == pytest.approx(e.kv_cache_tokens / 8192)


def test_omitted_options_take_the_pinned_vllm_defaults():
    e = estimate("meta-llama__Llama-3.1-8B-Instruct")
    assert e.requested == -(-85_017_493_504 * 92 // 100)  # gpu_memory_utilization 0.92
    assert e.max_model_len == 131_072  # the model's maximum
    assert e.max_num_batched_tokens == 2048


def test_more_batched_tokens_cost_activation_memory_and_eager_mode_costs_no_graphs():
    small = estimate("meta-llama__Llama-3.1-8B-Instruct", max_num_batched_tokens=2048)
    large = estimate("meta-llama__Llama-3.1-8B-Instruct", max_num_batched_tokens=16384)
    assert large.activation > small.activation
    assert large.kv_cache < small.kv_cache
    eager = estimate("meta-llama__Llama-3.1-8B-Instruct", enforce_eager=True)
    assert eager.cuda_graph == 0
    assert eager.kv_cache > small.kv_cache


def test_sliding_window_token_capacity_follows_the_pinned_vllms_block_rule():
    # vllm/v1/core/kv_cache_utils.py and kv_cache_interface.py: Gemma 2's 21 full and 21 sliding layers
    # are two groups of 21 sharing one pool of kv_cache // (16 x 8192 B) // 21 blocks. A request needs
    # ceil(8192 / 16) = 512 blocks in the full group and, with chunked prefill of 2048 tokens,
    # ceil(min(4096 - 1 + 2048, 8192) / 16) + 1 = 385 in the sliding group.
    e = estimate("google__gemma-2-9b-it", max_model_len=8192)
    per_layer = 2 * 8 * 256 * 2
    blocks = e.kv_cache // (16 * per_layer) // 21
    assert e.max_concurrency == pytest.approx(blocks / (512 + 385), rel=1e-12)
    assert e.kv_cache_tokens == int(blocks / (512 + 385) * 8192)
    assert e.kv_bytes_per_request == (512 + 385) * 16 * per_layer * 21
    # The rule this replaces held a window of 4096 + 16 tokens: 16.6% more tokens than vLLM counts,
    # the 17-18% the H200 start-ups showed once the small KV GiB difference is added.
    old_blocks = e.kv_cache // (16 * 42 * per_layer)  # blocks of every layer's page, 16 tokens each
    old = old_blocks * 16 * 8192 * 42 / (21 * 8192 + 21 * (4096 + 16))
    assert old / e.kv_cache_tokens == pytest.approx(1.1664, abs=0.0005)
    # Still more than full attention everywhere would give.
    assert e.kv_cache_tokens > old_blocks * 16


def test_gemma3_groups_pad_the_sliding_kind_to_whole_groups():
    # 62 layers: 10 global, 52 local (5:1). Groups of 10: one full group, six sliding (8 padding slots).
    e = estimate("google__gemma-3-27b-it", max_model_len=8192)
    per_token = memory.kv_bytes_per_token(shape("google__gemma-3-27b-it"), 1, 1, 2)
    assert (per_token.full_layers, per_token.sliding_layers) == (10, 52)
    layout = memory.kv_layout(per_token)
    assert (layout.group_size, layout.full_groups, layout.sliding_groups) == (10, 1, 6)
    sliding_blocks = -(-min(1024 - 1 + 2048, 8192) // 16) + 1  # 193
    blocks = e.kv_cache // layout.page_bytes // 10
    assert e.max_concurrency == pytest.approx(blocks / (512 + 6 * sliding_blocks), rel=1e-12)


def test_near_equal_kinds_share_the_larger_group_size():
    # 12 sliding and 13 full (gpt-oss-20b with a drafter, vLLM's own example): groups of 13, one each.
    layout = memory.kv_layout(memory.KvPerToken(13 * 64, 12 * 64, 64, 13, 12))
    assert (layout.group_size, layout.full_groups, layout.sliding_groups) == (13, 1, 1)


def test_without_chunked_prefill_the_window_holds_a_whole_prompt():
    chunked = estimate("google__gemma-2-9b-it", max_model_len=8192)
    whole = estimate("google__gemma-2-9b-it", max_model_len=8192, enable_chunked_prefill=False)
    # max_num_batched_tokens becomes max_model_len: the sliding group needs all 8192 tokens, + 1 block.
    assert whole.kv_bytes_per_request == (512 + 513) * 16 * (2 * 8 * 256 * 2) * 21
    assert whole.max_concurrency < chunked.max_concurrency


def test_full_attention_token_capacity_is_blocks_times_16():
    e = estimate("meta-llama__Llama-3.1-8B-Instruct", max_model_len=8192)
    assert e.kv_cache_tokens == e.kv_cache // (131_072 * 16) * 16


def test_a_model_too_big_for_the_gpu_leaves_no_kv_cache():
    e = estimate("mistralai__Mixtral-8x7B-Instruct-v0.1", max_model_len=4096)
    assert e.kv_cache == 0
    assert e.kv_cache_tokens == 0
    assert "vLLM fails at start" in e.notes[0]


# --- bad input -------------------------------------------------------------------------------


def broken(tmp_path: Path, slug: str, change) -> Path:
    cfg = config(slug)
    change(cfg)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


ESTIMATE = ["memory", "estimate", "--gpu-total-gib", "79.18"]


@pytest.mark.parametrize(
    ("slug", "change", "args", "message"),
    [
        (
            "meta-llama__Llama-3.1-8B-Instruct",
            lambda c: c.pop("hidden_size"),
            [],
            "{cfg}: hidden_size: missing",
        ),
        (
            "mistralai__Mistral-Small-3.1-24B-Instruct-2503",
            lambda c: c["text_config"].pop("num_hidden_layers"),
            [],
            "{cfg}: text_config.num_hidden_layers: missing",
        ),
        (
            "meta-llama__Llama-3.1-8B-Instruct",
            lambda c: c.update(architectures=["RwkvForCausalLM"]),
            [],
            "{cfg}: architectures: 'RwkvForCausalLM' is not an architecture tritonfleet can size",
        ),
        (
            "meta-llama__Llama-3.1-8B-Instruct",
            lambda c: c.update(num_hidden_layers="32"),
            [],
            "{cfg}: num_hidden_layers: '32' is not a positive whole number",
        ),
        (
            "meta-llama__Llama-3.1-8B-Instruct",
            lambda c: c.update(quantization_config={"quant_method": "hqq"}),
            [],
            "{cfg}: quantization_config.quant_method: 'hqq' is not a quantization tritonfleet knows",
        ),
        (
            "meta-llama__Llama-3.1-8B-Instruct",
            lambda c: None,
            ["--tensor-parallel-size", "3"],
            "{cfg}: num_attention_heads: 32 attention heads do not divide by tensor_parallel_size 3",
        ),
        (
            "meta-llama__Llama-3.1-8B-Instruct",
            lambda c: None,
            ["--gpu-memory-utilization", "0"],
            "argument --gpu-memory-utilization: 0 is outside (0, 1]",
        ),
        (
            "meta-llama__Llama-3.1-8B-Instruct",
            lambda c: None,
            ["--gpu-memory-utilization", "1.2"],
            "argument --gpu-memory-utilization: 1.2 is outside (0, 1]",
        ),
        (
            "meta-llama__Llama-3.1-8B-Instruct",
            lambda c: None,
            ["--max-model-len", "-5"],
            "argument --max-model-len: -5 is outside [1, 1073741824]",
        ),
        (
            "meta-llama__Llama-3.1-8B-Instruct",
            lambda c: None,
            ["--max-model-len", "262144"],
            "--max-model-len: 262144 exceeds the model's maximum of 131072 tokens",
        ),
        (
            "meta-llama__Llama-3.1-8B-Instruct",
            lambda c: None,
            ["--compute-capability", "6.1"],
            "--compute-capability: 6.1 is not a CUDA GPU generation vLLM runs on (7.0 or newer)",
        ),
    ],
    ids=[
        "missing",
        "text-config",
        "architecture",
        "type",
        "quantization",
        "tp",
        "util-0",
        "util-high",
        "negative-len",
        "too-long",
        "old-gpu",
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path: Path, slug, change, args, message):
    path = broken(tmp_path, slug, change)
    result = cli(*ESTIMATE, "--model-config", path, *args)
    assert result.code == 2
    assert result.out == ""
    assert result.err.count("\n") == 1
    assert result.err == f"tritonfleet memory estimate: error: {message.format(cfg=path)}\n"


def test_a_gpu_total_that_is_not_positive(cli):
    model = CONFIGS / "meta-llama__Llama-3.1-8B-Instruct"
    result = cli("memory", "estimate", "--gpu-total-gib", "-1", "--model-config", model)
    assert result.code == 2
    assert result.out == ""
    assert (
        result.err
        == "tritonfleet memory estimate: error: argument --gpu-total-gib: -1 is outside (0, 16384]\n"
    )


def test_unreadable_and_non_json_configs(cli, tmp_path: Path):
    missing = cli(*ESTIMATE, "--model-config", tmp_path / "nope")
    assert missing.code == 2
    assert "cannot read the model config" in missing.err
    garbage = tmp_path / "config.json"
    garbage.write_text("{not json")
    result = cli(*ESTIMATE, "--model-config", tmp_path)  # a folder with a config.json in it
    assert result.code == 2
    assert result.err.startswith(f"tritonfleet memory estimate: error: {garbage}: line 1:2: malformed JSON")


def test_cli_prints_the_keys_it_promises(cli):
    flags = {
        "--gpu-memory-utilization": "0.9",
        "--tensor-parallel-size": "1",
        "--pipeline-parallel-size": "1",
        "--dtype": "auto",
        "--kv-cache-dtype": "fp8",
        "--max-model-len": "8192",
        "--max-num-seqs": "256",
        "--max-num-batched-tokens": "8192",
        "--format": "json",
    }
    model = CONFIGS / "meta-llama__Llama-3.1-8B-Instruct"
    result = cli(*ESTIMATE, "--model-config", model, *(part for pair in flags.items() for part in pair))
    assert result.code == 0, result.err
    data = json.loads(result.out)
    for key in ("weights_gib", "non_torch_gib", "activation_gib", "cuda_graph_gib", "kv_cache_gib"):
        assert isinstance(data[key], float)
    assert isinstance(data["kv_cache_tokens"], int)
    assert data["kv_cache_bytes_per_token"] == 65_536
    assert data["max_concurrency"] == pytest.approx(data["kv_cache_tokens"] / 8192, abs=0.01)
    budget = 79.18 * 0.9
    parts = sum(data[k] for k in ("weights_gib", "non_torch_gib", "activation_gib", "cuda_graph_gib"))
    assert data["kv_cache_gib"] == pytest.approx(budget - parts, abs=0.01)


# --- the log dataset -------------------------------------------------------------------------

LOGS = ROOT / "tests" / "fixtures" / "memory-logs"


def test_the_log_dataset_cites_a_source_for_every_row_and_holds_its_configs():
    rows = yaml.safe_load((LOGS / "rows.yaml").read_text())
    assert len(rows) >= 20
    assert len({row["id"] for row in rows}) == len(rows)
    for row in rows:
        assert row["source"].startswith("https://"), row["id"]
        assert row["log_excerpt"].strip(), row["id"]
        if row["config"]:
            assert any((d / row["config"] / "config.json").is_file() for d in (CONFIGS, LOGS / "configs")), (
                row["id"]
            )


def test_a_v1_log_is_reproduced_from_its_settings():
    # llm-d's Llama-3.1-8B run on one H100: utilization 0.9, max_model_len 16000, the OpenAI server's
    # H100 defaults (1024 sequences, 8192 batched tokens). Its vLLM left CUDA graphs out of the budget.
    row = next(
        r for r in yaml.safe_load((LOGS / "rows.yaml").read_text()) if r["id"] == "llmd-llama31-8b-h100-16k"
    )
    e = estimate(
        "meta-llama__Llama-3.1-8B-Instruct",
        gpu_total_gib=row["total_gpu_memory_gib"],
        gpu_memory_utilization=row["gpu_memory_utilization"],
        max_model_len=row["max_model_len"],
        max_num_seqs=1024,
        max_num_batched_tokens=8192,
        sampler=row["sampler"],
    )
    assert e.weights / memory.GiB == pytest.approx(row["weights_gib"], abs=0.01)
    assert e.activation / memory.GiB == pytest.approx(row["activation_peak_gib"], rel=0.02)
    assert (e.kv_cache + e.cuda_graph) / memory.GiB == pytest.approx(row["kv_cache_gib"], rel=0.01)


def test_the_estimate_meets_the_accuracy_targets_on_the_log_dataset():
    # The targets, as `make bench-memory` scores them: median |KV error| <= 3% and no row whose
    # KV cache is over-predicted by more than 5%, each row under its own release's accounting.
    scored, _ = calibration.scores(yaml.safe_load((LOGS / "rows.yaml").read_text()), (CONFIGS, LOG_CONFIGS))
    kv = {s.row["id"]: s.error("kv") for s in scored if s.scope is None and s.error("kv") is not None}
    assert len(kv) >= 14
    median, over = calibration.kv_target(scored)
    assert median == pytest.approx(statistics.median(abs(e) for e in kv.values()))
    assert median <= 3.0
    assert over == [], {row: kv[row] for row in over}
    weights = [e for s in scored if (e := s.error("weights")) is not None]
    assert len(weights) >= 20 and max(abs(e) for e in weights) <= 3.0
    per_token = [e for s in scored if (e := s.error("kv bytes/token")) is not None]
    assert len(per_token) >= 8 and max(abs(e) for e in per_token) <= 0.5  # only GiB rounding in the logs
    # A failed start in the logs (no memory left for the KV cache) is predicted to fail too.
    kv_figures = [s.figures["kv"] for s in scored if "kv" in s.figures and s.figures["kv"][1] is not None]
    failed = [(est, real) for est, real in kv_figures if real <= 0]
    assert failed and all(est <= 0 for est, _ in failed)


def test_each_row_is_scored_with_its_own_releases_accounting():
    accounting = calibration.accounting
    assert accounting({"engine": "V0", "vllm_version": "0.6.4.post1"}) == "<=0.6.4"
    assert accounting({"engine": "V0", "peak_torch_memory_gib": 17.06}) == "<=0.6.4"  # the log's format
    assert accounting({"engine": "V0"}) == "0.6.5-0.10"
    assert accounting({"engine": "V0", "vllm_version": "v0.7.1"}) == "0.6.5-0.10"
    assert accounting({"engine": "V1", "vllm_version": "0.10.1.1"}) == "0.6.5-0.10"
    assert accounting({"engine": "V1", "vllm_version_min": "0.11.0"}) == "0.11-0.19"
    assert accounting({"engine": "V1", "vllm_version": "0.19.0"}) == "0.11-0.19"
    assert accounting({"engine": "V1", "vllm_version": "v0.21.1"}) == ">=0.20"


@pytest.mark.parametrize(
    ("model", "tp", "weights_gib"),
    [("llama-3.1-8b-instruct", 1, 14.99), ("llama-3.3-70b-instruct", 4, 70.554e9 * 2 / 4 / memory.GiB)],
)
def test_cli_on_the_gpu_models_of_the_repository(cli, model: str, tp: int, weights_gib: float):
    engine_args = json.loads((ROOT / "model_repository" / model / "1" / "model.json").read_text())
    assert engine_args["tensor_parallel_size"] == tp
    result = cli(*ESTIMATE, "--model-config", ROOT / "model_repository" / model / "hf-config.json",
                 "--tensor-parallel-size", str(tp), "--max-model-len", str(engine_args["max_model_len"]),
                 "--max-num-seqs", str(engine_args["max_num_seqs"]))  # fmt: skip
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["weights_gib"] == pytest.approx(weights_gib, rel=0.01)
    assert data["kv_cache_gib"] > 0
    assert data["max_concurrency"] >= 1  # the model.json's own length fits at least once


@pytest.mark.parametrize(("capability", "logged_gib"), [("9.0", 13.47), ("8.0", 13.72)])
def test_cli_sizes_mxfp4_experts_for_the_gpu_generation_it_is_given(cli, capability: str, logged_gib: float):
    # gpt-oss-20b on an H100 (llm-d) and on an A100 (myoceane.fr): the flag reaches the weights.
    result = cli(*ESTIMATE, "--model-config", LOG_CONFIGS / "openai__gpt-oss-20b", "--max-model-len", "16000",
                 "--compute-capability", capability)  # fmt: skip
    assert result.code == 0, result.err
    assert json.loads(result.out)["weights_gib"] == pytest.approx(logged_gib, rel=0.005)
