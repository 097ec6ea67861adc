"""The config.json fields tritonfleet reads, declared once and checked where the file comes in.

A Hugging Face config.json carries many more keys than memory depends on; those are kept and not
checked (`extra="allow"`). Every key tritonfleet reads is declared here with its type and its bounds,
so the estimate itself never sees a wrong type: a count is a JSON whole number (not `true`, not
`4096.0`, not `"32"`) within a documented bound, a dtype one vLLM serves a model in, a nested block an
object. `null` means the key is not set, as transformers writes it. A value that breaks these rules is
one InputError naming the file and the dotted key (`text_config.num_key_value_heads`).

Which keys must be present, and how they relate to each other (KV heads dividing the attention heads,
top-k within the experts), depends on the model family and is checked where the shape is built
(memory.shape_from_config).
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, ValidationError
from pydantic_core import PydanticCustomError

from tritonfleet.errors import InputError
from tritonfleet.files import dotted

# Bounds on what a config may declare: each well above the largest released model (in brackets), low
# enough that an absurd value fails at once instead of running for minutes.
MAX_LAYERS = 1024  # decoder or vision layers [126, Llama 3.1 405B]
MAX_HIDDEN = 1 << 17  # hidden size, per-layer widths [18,432]
MAX_HEADS = 1024  # attention or KV heads [128]
MAX_HEAD_DIM = 4096  # per head, rope and latent ranks too [512]
MAX_INTERMEDIATE = 1 << 20  # MLP and expert widths [53,248]
MAX_VOCAB = 1 << 24  # [262,208, Gemma 3]
MAX_EXPERTS = 4096  # routed, shared or per token [512]
MAX_POSITIONS = 1 << 26  # the longest sequence, rope scaling included [10M, Llama 4 Scout]
MAX_BITS = 16  # quantized weight bits
MAX_GROUP = 1 << 20  # quantization group size
MAX_PATCH = 1024  # vision patch size in pixels [14]

# The dtypes vLLM serves a model in, as config.json writes them ("torch." prefix optional).
SERVABLE_DTYPES = ("float16", "bfloat16", "float32", "half", "float")


class _Short(reprlib.Repr):
    """repr, cut short in length and depth, and safe for numbers too long to print."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxlist, self.maxdict, self.maxstring, self.maxother = 3, 4, 4, 40, 40

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 128:
            return f"<a {math.floor(x.bit_length() * math.log10(2)) + 1}-digit number>"
        return repr(x)


_SHORT = _Short()


def show(value: object) -> str:
    """A value for an error message: its repr, cut short."""
    return _SHORT.repr(value)


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError("tritonfleet", "{message}", {"message": message})


def _whole(low: int, high: int) -> Callable[[object], int | None]:
    def check(value: object) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise _fail(f"{show(value)} is not a {'positive' if low > 0 else 'non-negative'} whole number")
        if value > high:
            raise _fail(f"{show(value)} is more than {high}, the most tritonfleet sizes")
        return value

    return check


def _unbounded(value: object) -> int | None:
    """A positive whole number of any size: a length key that only counts when it is the shortest."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(f"{show(value)} is not a positive whole number")
    return value


def _group_size(value: object) -> int | None:
    """A quantization group: a positive size, or -1 or 0 for one group per channel."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value <= MAX_GROUP:
        raise _fail(f"{show(value)} is not a group size (-1, or a whole number up to {MAX_GROUP})")
    return value


def _string(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise _fail(f"{show(value)} is not a string")


def _flag(value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise _fail(f"{show(value)} is not true or false")


def _factor(value: object) -> float | int | None:
    """A scaling factor: positive, finite, and below MAX_POSITIONS (past it no model fits anyway)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(f"{show(value)} is not a number")
    if not value > 0 or (isinstance(value, float) and not math.isfinite(value)):
        raise _fail(f"{show(value)} is not a positive finite number")
    if value > MAX_POSITIONS:
        raise _fail(f"{show(value)} is more than {MAX_POSITIONS}, the most tritonfleet sizes")
    return value


def _dtype(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value.removeprefix("torch.") in SERVABLE_DTYPES:
        return value
    raise _fail(f"{show(value)} is not a dtype vLLM serves a model in (float16, bfloat16 or float32)")


def _strings(value: object) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise _fail(f"{show(value)} is not a list of strings")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise _fail(f"entry {index}, {show(item)}, is not a string")
    return value


def _layer_indices(value: object) -> list[int] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise _fail(f"{show(value)} is not a list of layer numbers")
    for index, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item < MAX_LAYERS:
            raise _fail(f"entry {index}, {show(item)}, is not a layer number")
    return value


def _object(value: object) -> object:
    if value is None or isinstance(value, Mapping | BaseModel):
        return value
    raise _fail(f"{show(value)} is not an object")


Text = Annotated[str | None, PlainValidator(_string)]
Flag = Annotated[bool | None, PlainValidator(_flag)]
Dtype = Annotated[str | None, PlainValidator(_dtype)]
Length = Annotated[int | None, PlainValidator(_unbounded)]
GroupSize = Annotated[int | None, PlainValidator(_group_size)]
Factor = Annotated[float | None, PlainValidator(_factor)]
Strings = Annotated[list[str] | None, PlainValidator(_strings)]
LayerIndices = Annotated[list[int] | None, PlainValidator(_layer_indices)]
# Counts: positive whole numbers up to their bound.
Layers = Annotated[int | None, PlainValidator(_whole(1, MAX_LAYERS))]
Hidden = Annotated[int | None, PlainValidator(_whole(1, MAX_HIDDEN))]
Heads = Annotated[int | None, PlainValidator(_whole(1, MAX_HEADS))]
HeadDim = Annotated[int | None, PlainValidator(_whole(1, MAX_HEAD_DIM))]
Width = Annotated[int | None, PlainValidator(_whole(1, MAX_INTERMEDIATE))]
Vocab = Annotated[int | None, PlainValidator(_whole(1, MAX_VOCAB))]
Experts = Annotated[int | None, PlainValidator(_whole(1, MAX_EXPERTS))]
Positions = Annotated[int | None, PlainValidator(_whole(1, MAX_POSITIONS))]
Bits = Annotated[int | None, PlainValidator(_whole(1, MAX_BITS))]
Patch = Annotated[int | None, PlainValidator(_whole(1, MAX_PATCH))]
# Amounts: whole numbers from 0, which means none (or the default), up to their bound.
SomeLayers = Annotated[int | None, PlainValidator(_whole(0, MAX_LAYERS))]
SomeHidden = Annotated[int | None, PlainValidator(_whole(0, MAX_HIDDEN))]
SomeHeadDim = Annotated[int | None, PlainValidator(_whole(0, MAX_HEAD_DIM))]
SomeWidth = Annotated[int | None, PlainValidator(_whole(0, MAX_INTERMEDIATE))]
SomeExperts = Annotated[int | None, PlainValidator(_whole(0, MAX_EXPERTS))]
SomePositions = Annotated[int | None, PlainValidator(_whole(0, MAX_POSITIONS))]


class _Block(BaseModel):
    """A JSON object of config.json: declared keys checked, all others kept as they are."""

    model_config = ConfigDict(extra="allow", protected_namespaces=(), frozen=True)

    def given(self, key: str) -> bool:
        """Whether the file set this key (to any value, null included)."""
        return key in self.model_fields_set


class RopeScaling(_Block):
    rope_type: Text = None
    type: Text = None  # the older spelling of rope_type
    factor: Factor = None
    original_max_position_embeddings: Positions = None


class TextConfig(_Block):
    """The language model's keys: the whole config.json, or its `text_config`."""

    model_type: Text = None
    hidden_size: Hidden = None
    num_hidden_layers: Layers = None
    num_attention_heads: Heads = None
    num_key_value_heads: Heads = None
    head_dim: HeadDim = None
    vocab_size: Vocab = None
    intermediate_size: Width = None
    ffn_dim: Width = None  # OPT's intermediate_size
    word_embed_proj_dim: Hidden = None  # OPT
    torch_dtype: Dtype = None
    tie_word_embeddings: Flag = None
    attention_bias: Flag = None
    # The longest sequence: vLLM takes the shortest of the keys a config sets (vllm/config/model.py).
    max_position_embeddings: Length = None
    n_positions: Length = None
    max_seq_len: Length = None
    seq_length: Length = None
    model_max_length: Length = None
    max_sequence_length: Length = None
    max_seq_length: Length = None
    seq_len: Length = None
    rope_scaling: Annotated[RopeScaling | None, BeforeValidator(_object)] = None
    # Sliding-window attention.
    sliding_window: SomePositions = None  # 0: none
    use_sliding_window: Flag = None
    sliding_window_pattern: Layers = None  # Gemma 3
    max_window_layers: SomeLayers = None  # Qwen
    layer_types: Strings = None  # "sliding_attention" or "full_attention", one per layer
    # Multi-head latent attention (DeepSeek V2/V3).
    kv_lora_rank: SomeHeadDim = None  # 0: none
    q_lora_rank: SomeHidden = None  # 0: none
    qk_rope_head_dim: HeadDim = None
    qk_nope_head_dim: HeadDim = None
    v_head_dim: HeadDim = None
    # Mixture of experts: the first of the three expert counts a config sets (0: none) is used.
    num_local_experts: SomeExperts = None
    num_experts: SomeExperts = None
    n_routed_experts: SomeExperts = None
    num_experts_per_tok: Experts = None
    moe_intermediate_size: SomeWidth = None  # 0: intermediate_size
    n_shared_experts: SomeExperts = None
    shared_expert_intermediate_size: SomeWidth = None
    first_k_dense_replace: SomeLayers = None
    mlp_only_layers: LayerIndices = None


class VisionConfig(_Block):
    """A ViT tower's keys."""

    hidden_size: Hidden = None
    intermediate_size: Width = None
    num_hidden_layers: Layers = None
    patch_size: Patch = None


class WeightsScheme(_Block):
    """compressed-tensors: how one config group stores its weights."""

    num_bits: Bits = None
    group_size: GroupSize = None
    strategy: Text = None


class ConfigGroup(_Block):
    weights: Annotated[WeightsScheme | None, BeforeValidator(_object)] = None


class QuantizationConfig(_Block):
    quant_method: Text = None
    bits: Bits = None  # GPTQ, AWQ
    w_bit: Bits = None  # AWQ's older spelling
    group_size: GroupSize = None
    q_group_size: GroupSize = None
    config_groups: Annotated[dict[str, Annotated[ConfigGroup, BeforeValidator(_object)]] | None,
                             BeforeValidator(_object)] = None  # fmt: skip
    load_in_4bit: Flag = None  # bitsandbytes
    load_in_4bit_private: Flag = Field(None, alias="_load_in_4bit")
    bnb_4bit_use_double_quant: Flag = None


class ModelConfig(TextConfig):
    """A whole config.json: the text model's keys at the top, or under `text_config`."""

    architectures: Strings = None
    dtype: Dtype = None  # newer transformers' name for torch_dtype
    text_config: Annotated[TextConfig | None, BeforeValidator(_object)] = None
    vision_config: Annotated[VisionConfig | None, BeforeValidator(_object)] = None
    quantization_config: Annotated[QuantizationConfig | None, BeforeValidator(_object)] = None


def _message(error: Mapping[str, Any]) -> str:
    if error["type"] == "tritonfleet":
        return str(error["ctx"]["message"])
    if error["type"] in ("model_type", "model_attributes_type", "dict_type"):
        return f"{show(error['input'])} is not an object"
    return str(error["msg"])


def parse(config: object, source: str = "config.json") -> ModelConfig:
    """config.json's keys checked; InputError naming the file and the first wrong key."""
    if isinstance(config, ModelConfig):
        return config
    if not isinstance(config, Mapping):
        raise InputError(source, None, "not a JSON object")
    try:
        return ModelConfig.model_validate(dict(config))
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        raise InputError(source, dotted(error["loc"]), _message(error)) from None
