"""What tritonfleet knows about each model family, in one table: adding an architecture is one entry.

A `Family` says how a family's decoder differs from the Llama layout the estimate assumes (gated MLP,
no biases, two RMSNorm vectors per layer, one final norm, every layer attending within a sliding window
when the config sets one). The architecture names in config.json `architectures` pick the family whose
MLP shape is used (gated or not); the text config's `model_type` picks the one whose layer quirks apply,
as in vLLM, where one architecture class may serve several model types. A model type that no entry
lists has no quirks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

# How a family's layers split between full attention and a sliding window, when the config sets one:
# - "all": every layer within the window (Mistral), unless `layer_types` lists them one by one;
# - "max_window_layers": the layers from `max_window_layers` on (Qwen), unless `layer_types` lists them;
# - "alternate": every other layer (Gemma 2);
# - "pattern": all but every `sliding_window_pattern`-th layer (Gemma 3, 5 local : 1 global).
SlidingRule = Literal["all", "max_window_layers", "alternate", "pattern"]


def _frozen(values: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(values or {}))


@dataclass(frozen=True)
class Family:
    """One model family's shape, as far as memory depends on it."""

    name: str
    architectures: tuple[str, ...] = ()  # config.json `architectures` entries this family sizes
    model_types: tuple[str, ...] = ()  # text config `model_type` values whose quirks these are
    gated_mlp: bool = True  # gate/up/down projections; False: fc1/fc2 with biases
    qkv_bias: bool = False  # q/k/v projections have biases whatever `attention_bias` says
    out_bias: bool = False  # the attention output projection has a bias
    attention_sinks: bool = False  # one learned sink per attention head
    qk_norm: bool = False  # RMSNorm over each query and key head (head_dim weights each)
    layer_norm_vectors: int = 2  # hidden-sized norm vectors per layer (LayerNorm's bias counts as one)
    final_norm_vectors: int = 1  # the same for the final norm
    lm_head_bias: bool = False
    shared_expert_gate: bool = False  # MoE layers gate their shared expert (a hidden x 1 projection)
    expert_biases: bool = False  # the router and each expert's projections have biases
    learned_positions: bool = False  # OPT: position embeddings (max positions + 2) and a projection
    sliding: SlidingRule = "all"
    # Keys a compact config.json may omit, with the value transformers fills in.
    implied: Mapping[str, Any] = field(default_factory=_frozen)


FAMILIES: tuple[Family, ...] = (
    Family("llama", ("LlamaForCausalLM",), ("llama",)),
    Family("llava", ("LlavaForConditionalGeneration",), ("llava",)),
    Family("mistral", ("MistralForCausalLM", "Mistral3ForConditionalGeneration"), ("mistral", "mistral3")),
    Family("mixtral", ("MixtralForCausalLM",), ("mixtral",)),
    Family("granite", ("GraniteForCausalLM",), ("granite",)),
    Family("phi3", ("Phi3ForCausalLM",), ("phi3",)),
    Family("deepseek_v2", ("DeepseekV2ForCausalLM",), ("deepseek_v2",)),
    Family("deepseek_v3", ("DeepseekV3ForCausalLM",), ("deepseek_v3",)),
    Family("qwen2", ("Qwen2ForCausalLM",), ("qwen2",), qkv_bias=True, sliding="max_window_layers"),
    Family(
        "qwen2_moe",
        ("Qwen2MoeForCausalLM",),
        ("qwen2_moe",),
        qkv_bias=True,
        shared_expert_gate=True,
        sliding="max_window_layers",
    ),
    Family("qwen3", ("Qwen3ForCausalLM",), ("qwen3",), qk_norm=True, sliding="max_window_layers"),
    Family("qwen3_moe", ("Qwen3MoeForCausalLM",), ("qwen3_moe",), qk_norm=True, sliding="max_window_layers"),
    Family(
        "gemma2",
        ("Gemma2ForCausalLM",),
        ("gemma2",),
        layer_norm_vectors=4,  # pre- and post-feedforward norms as well
        sliding="alternate",
        implied=_frozen({"tie_word_embeddings": True}),
    ),
    Family(
        "gemma3",
        ("Gemma3ForCausalLM", "Gemma3ForConditionalGeneration"),
        ("gemma3_text",),
        qk_norm=True,
        layer_norm_vectors=4,
        sliding="pattern",
        implied=_frozen(
            {
                "vocab_size": 262208,
                "head_dim": 256,
                "max_position_embeddings": 131072,
                "sliding_window": 4096,
                "sliding_window_pattern": 6,
                "tie_word_embeddings": True,
                "num_attention_heads": 8,
                "num_key_value_heads": 4,
            }
        ),
    ),
    Family(
        "gpt_oss",
        ("GptOssForCausalLM",),
        ("gpt_oss",),
        out_bias=True,
        attention_sinks=True,
        expert_biases=True,
    ),
    Family(
        "phi",
        ("PhiForCausalLM",),
        ("phi",),
        gated_mlp=False,
        qkv_bias=True,
        out_bias=True,
        layer_norm_vectors=2,  # one LayerNorm (weight and bias) shared by attention and MLP
        final_norm_vectors=2,
        lm_head_bias=True,
    ),
    Family(
        "opt",
        ("OPTForCausalLM",),
        ("opt",),
        gated_mlp=False,
        qkv_bias=True,
        out_bias=True,
        layer_norm_vectors=4,  # two LayerNorms with biases
        final_norm_vectors=2,
        learned_positions=True,
        implied=_frozen({"tie_word_embeddings": True}),
    ),
)

NO_QUIRKS = Family("default")


def _index(key: str) -> dict[str, Family]:
    found: dict[str, Family] = {}
    for family in FAMILIES:
        for name in getattr(family, key):
            if name in found:
                raise ValueError(f"{name} is listed by families {found[name].name} and {family.name}")
            found[name] = family
    return found


BY_ARCHITECTURE: Mapping[str, Family] = MappingProxyType(_index("architectures"))
BY_MODEL_TYPE: Mapping[str, Family] = MappingProxyType(_index("model_types"))


def for_architecture(architecture: str) -> Family | None:
    """The family sizing this architecture, or None when tritonfleet cannot size it."""
    return BY_ARCHITECTURE.get(architecture)


def for_model_type(model_type: str) -> Family:
    """The family whose layer quirks this model type has; NO_QUIRKS for one no entry lists."""
    return BY_MODEL_TYPE.get(model_type, NO_QUIRKS)
