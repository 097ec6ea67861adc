"""What a model's config.json says, as far as memory depends on it: its Shape.

config.json is checked once where it comes in (config.py: every key read here, with its type and
bounds), so nothing after `shape_from_config` sees a wrong type; what each model family does
differently is one table (families.py). memory.py sizes a Shape for given engine settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tritonfleet.errors import InputError
from tritonfleet.files import load_json_object, read_text
from tritonfleet.sizing import families
from tritonfleet.sizing.config import (
    MAX_POSITIONS,
    ModelConfig,
    QuantizationConfig,
    TextConfig,
    VisionConfig,
    parse,
    show,
)

# Model-family knowledge is one table, families.FAMILIES; these are views of it under this module's old names:
# architecture -> gated MLP, and model_type -> the keys a compact config.json may omit.
ARCHITECTURES: Mapping[str, bool] = MappingProxyType(
    {architecture: family.gated_mlp for architecture, family in families.BY_ARCHITECTURE.items()}
)
IMPLIED: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {model_type: family.implied for model_type, family in families.BY_MODEL_TYPE.items() if family.implied}
)
# config.json keys vLLM reads for the model's longest sequence (vllm/config/model.py).
MAX_LEN_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "seq_length",
    "model_max_length",
    "max_sequence_length",
    "max_seq_length",
    "seq_len",
)


# --- what the config says --------------------------------------------------------------------


@dataclass(frozen=True)
class Quantization:
    method: str
    linear_bytes_per_param: float  # decoder Linear layers; embeddings and lm_head stay in the dtype
    experts_only: bool = False  # only the routed experts are quantized; attention stays in the dtype


@dataclass(frozen=True)
class Mla:
    kv_lora_rank: int
    qk_rope_head_dim: int
    qk_nope_head_dim: int
    v_head_dim: int
    q_lora_rank: int | None


@dataclass(frozen=True)
class Moe:
    experts: int
    top_k: int
    expert_intermediate: int
    shared_intermediate: int  # all shared experts together; 0 if none
    moe_layers: int


@dataclass(frozen=True)
class Shape:
    """What memory depends on, read from config.json."""

    architecture: str
    model_type: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    intermediate: int
    tie_embeddings: bool
    gated_mlp: bool
    qkv_bias: bool
    torch_dtype: str
    max_position: int
    sliding_window: int | None = None
    sliding_layers: int = 0  # layers that attend only within the window
    mla: Mla | None = None
    moe: Moe | None = None
    quantization: Quantization | None = None
    extra_params: int = 0  # learned positions, vision tower and projector
    extra_norm_params_per_layer: int = 0


def read_config(path: Path | str) -> dict[str, Any]:
    """config.json (or a folder holding it), as a dict; InputError when it cannot be read.

    Read by JSON's own rules, not Python's (files.load_json_object: no NaN, no key twice, ...).
    """
    path = Path(path)
    file = path / "config.json" if path.is_dir() else path
    try:
        text = read_text(file, "model config", regular=True)
    except InputError as exc:  # one wording for every reason: "cannot read the model config: ..."
        reason = exc.message.removeprefix("cannot read model config: ").removeprefix("model config ")
        reason = reason.removeprefix("is ").replace("expected, found a directory", "a directory")
        raise InputError(file, None, f"cannot read the model config: {reason}") from exc
    data = load_json_object(text, file)
    return data


def _require(text: TextConfig, key: str, source: str, prefix: str) -> int:
    """A count the model cannot be sized without; InputError naming it when the config lacks it."""
    value = getattr(text, key)
    if value is None:
        raise InputError(source, f"{prefix}{key}", "missing")
    return int(value)


def _quantization(q: QuantizationConfig | None, source: str) -> Quantization | None:
    if q is None or not q.model_fields_set:
        return None
    method = (q.quant_method or "").lower()
    field_name = "quantization_config.quant_method"
    if method in ("fp8", "fbgemm_fp8", "modelopt"):
        return Quantization(method, 1.0)
    if method == "compressed-tensors":
        groups = q.config_groups or {}
        weights = next((g.weights for g in groups.values() if g.weights and g.weights.model_fields_set), None)
        if weights is None:
            raise InputError(source, "quantization_config.config_groups", "no weights scheme found")
        bits = weights.num_bits or 8
        group = weights.group_size or 0
        scale = 2 / group if group > 0 and weights.strategy == "group" else 0.0
        return Quantization(f"compressed-tensors w{bits}", bits / 8 + scale)
    if method in ("awq", "gptq", "awq_marlin", "gptq_marlin"):
        bits = next((b for b in (q.bits, q.w_bit) if b is not None), 4)
        group = next((g for g in (q.group_size, q.q_group_size) if g is not None), 128)
        # Per group: a 16-bit scale and a packed zero point.
        per_group = (2 + bits / 8) / group if group > 0 else 0.0
        return Quantization(method, bits / 8 + per_group)
    if method == "mxfp4":
        # gpt-oss checkpoints: expert weights as 4-bit E2M1 values with one E8M0 scale per 32, and the
        # attention, router, embeddings and lm_head left in bfloat16 ("modules_to_not_convert").
        # How the MoE kernel pads them depends on the GPU: see _routed_expert_params.
        return Quantization(method, 0.5 + 1 / 32, experts_only=True)
    if method == "bitsandbytes":
        if not (q.load_in_4bit or q.load_in_4bit_private):
            return Quantization(method, 1.0 + 4 / 64)  # LLM.int8: a byte each, with float32 scales
        # NF4/FP4: an absmax per 64 weights, float32, or with double quantization one byte per 64
        # plus a float32 per 256 of those.
        double = q.bnb_4bit_use_double_quant
        return Quantization(method, 0.5 + (1 / 64 + 4 / (64 * 256) if double else 4 / 64))
    raise InputError(source, field_name, f"{method or 'missing'!r} is not a quantization tritonfleet knows")


def _max_position(text: TextConfig, source: str, prefix: str) -> int | None:
    """The longest sequence the config allows: the shortest length key it sets, times rope scaling."""
    found = [(getattr(text, key), key) for key in MAX_LEN_KEYS if getattr(text, key) is not None]
    if not found:
        return None
    longest, key = min(found)
    where = f"{prefix}{key}"
    if longest > MAX_POSITIONS:
        raise InputError(
            source, where, f"{show(longest)} is more than {MAX_POSITIONS}, the most tritonfleet sizes"
        )
    rope = text.rope_scaling
    if rope is not None:
        rope_type = rope.rope_type if rope.given("rope_type") else rope.type
        if rope_type and rope_type not in ("su", "longrope", "llama3", "mrope", "default") and rope.factor:
            scaled = (rope.original_max_position_embeddings or longest) * float(rope.factor)
            if not 1 <= scaled <= MAX_POSITIONS:
                raise InputError(
                    source,
                    f"{prefix}rope_scaling.factor",
                    f"{rope.factor:g} scales the model to {scaled:g} positions, outside 1 to {MAX_POSITIONS}",
                )
            longest = int(scaled)
    return longest


def _vision_params(vision: VisionConfig | None, text_hidden: int) -> int:
    """A ViT tower (attention + MLP per layer, patch embedding) and a two-layer projector."""
    if vision is None or not vision.model_fields_set:
        return 0
    hidden = vision.hidden_size or 0
    inner = vision.intermediate_size or 4 * hidden
    layers = vision.num_hidden_layers or 0
    patch = vision.patch_size or 14
    per_layer = 4 * hidden * hidden + 2 * hidden * inner + 9 * hidden + inner
    patch_embed = 3 * patch * patch * hidden
    projector = hidden * text_hidden + text_hidden * text_hidden
    return layers * per_layer + patch_embed + projector


def _sliding_layers(text: TextConfig, family: families.Family, layers: int, source: str, prefix: str) -> int:
    """How many layers attend only within the sliding window, by the family's rule."""
    if family.sliding == "alternate":
        return layers // 2
    if family.sliding == "pattern":
        return layers - layers // (text.sliding_window_pattern or 6)
    if text.layer_types:
        if len(text.layer_types) != layers:
            raise InputError(
                source, f"{prefix}layer_types", f"{len(text.layer_types)} entries for {layers} layers"
            )
        return sum(t == "sliding_attention" for t in text.layer_types)
    if family.sliding == "max_window_layers":
        window_layers = text.max_window_layers if text.max_window_layers is not None else layers
        return max(0, layers - window_layers)
    return layers


def _moe(text: TextConfig, layers: int, intermediate: int, source: str, prefix: str) -> Moe | None:
    experts = text.num_local_experts or text.num_experts or text.n_routed_experts
    if not experts:
        return None
    top_k = _require(text, "num_experts_per_tok", source, prefix)
    if top_k > experts:
        raise InputError(
            source, f"{prefix}num_experts_per_tok", f"{top_k} experts per token, of {experts} experts"
        )
    expert_inter = text.moe_intermediate_size or intermediate
    shared = 0
    if text.n_shared_experts:
        shared = text.n_shared_experts * expert_inter
    elif text.shared_expert_intermediate_size:
        shared = text.shared_expert_intermediate_size
    dense = (text.first_k_dense_replace or 0) + len(text.mlp_only_layers or [])
    if dense > layers:
        raise InputError(source, f"{prefix}first_k_dense_replace", f"{dense} dense layers of {layers} in all")
    return Moe(
        experts=experts,
        top_k=top_k,
        expert_intermediate=expert_inter,
        shared_intermediate=shared,
        moe_layers=layers - dense,
    )


def shape_from_config(config: Mapping[str, Any] | ModelConfig, source: str = "config.json") -> Shape:
    """The memory-relevant shape of a Hugging Face config.json; InputError naming a wrong or missing field."""
    top = parse(config, source)
    if not top.architectures:
        raise InputError(source, "architectures", "missing")
    architecture = top.architectures[0]
    by_architecture = families.for_architecture(architecture)
    if by_architecture is None:
        raise InputError(
            source, "architectures", f"{architecture!r} is not an architecture tritonfleet can size"
        )
    text: TextConfig = top.text_config if top.text_config is not None else top
    prefix = "text_config." if top.text_config is not None else ""
    model_type = text.model_type if text.model_type is not None else (top.model_type or "")
    family = families.for_model_type(model_type)
    implied = {key: value for key, value in family.implied.items() if not text.given(key)}
    if implied:
        text = text.model_copy(update=implied)
    hidden = _require(text, "hidden_size", source, prefix)
    layers = _require(text, "num_hidden_layers", source, prefix)
    heads = _require(text, "num_attention_heads", source, prefix)
    kv_heads = text.num_key_value_heads or heads
    if kv_heads > heads:
        raise InputError(
            source,
            f"{prefix}num_key_value_heads",
            f"{kv_heads} KV heads, more than the {heads} attention heads",
        )
    if heads % kv_heads:
        raise InputError(
            source,
            f"{prefix}num_key_value_heads",
            f"{kv_heads} KV heads do not divide the {heads} attention heads into equal groups",
        )
    if text.head_dim is None and hidden < heads:
        raise InputError(
            source,
            f"{prefix}num_attention_heads",
            f"{heads} heads leave no head dimension of hidden_size {hidden} (and head_dim is not set)",
        )
    head_dim = text.head_dim or hidden // heads
    vocab = _require(text, "vocab_size", source, prefix)
    intermediate = text.intermediate_size or text.ffn_dim or 4 * hidden
    torch_dtype = str(text.torch_dtype or top.torch_dtype or top.dtype or "bfloat16")
    max_position = _max_position(text, source, prefix) or _max_position(top, source, "")
    if max_position is None:
        raise InputError(source, f"{prefix}max_position_embeddings", "missing")
    tie = text.tie_word_embeddings if text.given("tie_word_embeddings") else top.tie_word_embeddings

    mla = None
    if text.kv_lora_rank:
        mla = Mla(
            kv_lora_rank=text.kv_lora_rank,
            qk_rope_head_dim=_require(text, "qk_rope_head_dim", source, prefix),
            qk_nope_head_dim=_require(text, "qk_nope_head_dim", source, prefix),
            v_head_dim=_require(text, "v_head_dim", source, prefix),
            q_lora_rank=text.q_lora_rank,
        )
    moe = _moe(text, layers, intermediate, source, prefix)

    sliding_window = text.sliding_window
    sliding_layers = 0
    use_sliding_window = text.use_sliding_window if text.given("use_sliding_window") else True
    if sliding_window and use_sliding_window:
        sliding_layers = _sliding_layers(text, family, layers, source, prefix)

    extra = 0
    if family.learned_positions:
        extra += ((text.max_position_embeddings or 2048) + 2) * hidden  # learned positions
        projection = text.word_embed_proj_dim or hidden
        if projection != hidden:
            extra += 2 * projection * hidden
    extra += _vision_params(top.vision_config, hidden)
    qk_norm = 2 * head_dim if family.qk_norm else 0
    qkv_bias = bool(text.attention_bias) or family.qkv_bias
    return Shape(
        architecture=architecture,
        model_type=model_type,
        hidden=hidden,
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab=vocab,
        intermediate=intermediate,
        tie_embeddings=bool(tie),
        gated_mlp=by_architecture.gated_mlp,
        qkv_bias=qkv_bias,
        torch_dtype=torch_dtype,
        max_position=max_position,
        sliding_window=sliding_window if sliding_layers else None,
        sliding_layers=sliding_layers,
        mla=mla,
        moe=moe,
        quantization=_quantization(top.quantization_config, source),
        extra_params=extra,
        extra_norm_params_per_layer=qk_norm,
    )
