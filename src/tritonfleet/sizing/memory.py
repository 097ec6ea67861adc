"""How much GPU memory a vLLM instance needs, estimated from the model's config.json alone (no weights).

The accounting follows the vLLM pinned for the GPU image (images/versions.yaml, triton.vllm), as its
vllm/v1/worker/gpu_worker.py `determine_available_memory` and vllm/utils/mem_utils.py do it:

    requested  = ceil(total x gpu_memory_utilization)          # checked against free memory at start
    kv_cache   = requested - weights - activation peak - non-torch increase - CUDA-graph estimate

`total` is what CUDA reports (nvidia-smi memory.total - memory.reserved). The CUDA context and NCCL's
communicators are created before vLLM takes its memory snapshot, so they are not in that budget;
they are reported apart (`outside_budget`) because a co-tenant on the same GPU still has to fit them.

Checked against the pinned release's own source (its wheel). calibration.py scores the estimate against
start-up logs of releases 0.4.2 to 0.19, each under its own accounting, read from the sources of
0.6.4.post1, 0.6.6, 0.7.3, 0.8.5, 0.10.1.1, 0.11.0, 0.19.0 and 0.20.0 (bench/memory.py prints it).

config.json is checked once where it comes in (config.py: every key read here, with its type and bounds),
so nothing below sees a wrong type; what each model family does differently is one table (families.py).

Everything here is per GPU: weights and heads are split by tensor parallelism, layers by pipeline
parallelism, and the busiest rank (the first or last pipeline stage) is the one reported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from tritonfleet.errors import InputError
from tritonfleet.limits import MAX_GPU_BYTES, MAX_PARALLEL, MAX_SEQUENCES, MAX_TOKENS
from tritonfleet.sizing import families
from tritonfleet.sizing.config import show
from tritonfleet.sizing.shape import (  # re-exported: callers size models through this module
    ARCHITECTURES as ARCHITECTURES,
)
from tritonfleet.sizing.shape import (
    IMPLIED as IMPLIED,
)
from tritonfleet.sizing.shape import (
    MAX_LEN_KEYS as MAX_LEN_KEYS,
)
from tritonfleet.sizing.shape import (
    Mla as Mla,
)
from tritonfleet.sizing.shape import (
    Moe as Moe,
)
from tritonfleet.sizing.shape import (
    Quantization as Quantization,
)
from tritonfleet.sizing.shape import (
    Shape as Shape,
)
from tritonfleet.sizing.shape import (
    read_config as read_config,
)
from tritonfleet.sizing.shape import (
    shape_from_config as shape_from_config,
)
from tritonfleet.units import GiB, MiB

Dtype = Literal["auto", "bfloat16", "float16", "float32"]
KvDtype = Literal["auto", "fp8"]
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4, "half": 2, "float": 4}

# The pinned vLLM's defaults for an engine built from AsyncEngineArgs (the Triton backend's usage context):
# CacheConfig.gpu_memory_utilization and SchedulerConfig.DEFAULT_MAX_NUM_{BATCHED_TOKENS,SEQS}.
DEFAULT_GPU_MEMORY_UTILIZATION = 0.92
DEFAULT_MAX_NUM_BATCHED_TOKENS = 2048
DEFAULT_MAX_NUM_SEQS = 128
BLOCK_SIZE = 16
# The GPUs tritonfleet's fleets run (H100, H200: tests/fixtures/gpu-hosts). Kernels chosen by GPU
# generation (MXFP4 MoE layout) follow it; host facts give the real one.
DEFAULT_COMPUTE_CAPABILITY = 9.0
VOCAB_PADDING = 64  # VocabParallelEmbedding pads the vocabulary to a multiple of this
# CUDA-graph capture sizes: 1, 2, 4, then steps of 8 to 256 and 16 beyond, up to 2 x max_num_seqs
# (at most 512): vllm/config/vllm.py `_set_cudagraph_sizes`.
MAX_CUDAGRAPH_CAPTURE_SIZE = 512

# Constants fitted to real startup logs (tests/fixtures/memory-logs; `make bench-memory` prints the fit).
# Non-torch memory that grows after vLLM's snapshot (cuBLAS and attention workspaces; custom all-reduce
# buffers with TP > 1). The pinned release profiles the CUDA graphs inside that window, so what capture
# leaves behind counts too: 0.22-0.24 GiB at TP 1 in all 8 start-ups on an H200
# (tests/fixtures/gpu-startups/, the pinned release's folder), against 0.13-0.14 GiB in the logs of 0.11-0.19
# (tests/fixtures/memory-logs), whose figure calibration.py uses for releases before 0.20. The extra
# at TP 2, 0.41 GiB in the 0.11-0.19 logs (0.54-0.55 in all), is not yet measured on the pinned release.
NON_TORCH_BYTES = 245 * MiB
NON_TORCH_TP_BYTES = 420 * MiB
# Created before vLLM's snapshot, so outside its budget, but a co-tenant on the GPU still has to fit them.
# The CUDA context with vLLM's start-up allocations: 0.61 GiB in use before the snapshot on an H100 at
# TP 1 ("Free memory on device: 78.57/79.18 GiB on startup", llm-d's logs in tests/fixtures/memory-logs);
# bare PyTorch's context takes 552,402,944 bytes there (tests/fixtures/gpu-hosts/*/ctx.txt). Both figures
# here take the upper end of the logs' two-decimal rounding (0.62 and 0.94 GiB).
CUDA_CONTEXT_BYTES = 635 * MiB
# NCCL's communicators and the custom all-reduce buffers per rank when TP x PP > 1: 0.93 GiB more in use
# at start-up on NVLink-connected H100s at TP 2 (77.64/79.18 GiB free there). PCIe-only GPUs use less.
NCCL_BYTES = 963 * MiB
# The profile run's sampler warm-up (top-k = vocabulary - 1, top-p 0.9) over float32 logits for
# min(max_num_seqs, max_num_batched_tokens) requests. PyTorch's path sorts them: 9.7 float32 copies of
# the logits at its peak in the logs (4.76 GiB for a 128,256-token vocabulary at 1024 sequences,
# 5.56-5.64 GiB at 151,936). FlashInfer's sampler, the pinned vLLM's default on CUDA (SM 8.0 and up,
# VLLM_USE_FLASHINFER_SAMPLER), samples without sorting: about 2.5 copies, inferred from the logs whose
# whole non-KV overhead at 256 sequences was 0.5 GiB.
SAMPLER_LOGITS_COPIES = {"flashinfer": 2.5, "native": 9.7}
Sampler = Literal["flashinfer", "native"]
# CUDA-graph memory grows with layers x hidden size: 0.10 GiB (28 x 1024) to 0.50 GiB (28 x 3584) for
# the default 67 capture sizes in the logs.
CUDA_GRAPH_BYTES_PER_LAYER_HIDDEN = 5_600
DEFAULT_CAPTURE_SIZES = 67


# --- parameters and weights ------------------------------------------------------------------


@dataclass(frozen=True)
class LayerParams:
    """One decoder layer's parameters, split by what tensor parallelism does to them."""

    attention: int  # split by TP
    kv_projection: int  # split by TP, but replicated once TP exceeds the KV heads
    mlp: int  # split by TP: the dense MLP, or a MoE layer's shared expert
    replicated: int  # norms, router
    # A MoE layer's routed experts, all of them: apart from `mlp` because a quantization may cover
    # only them and the MoE kernel lays them out its own way (_routed_expert_params).
    experts: int = 0


def _attention_params(shape: Shape) -> tuple[int, int]:
    h, heads, kv, hd = shape.hidden, shape.heads, shape.kv_heads, shape.head_dim
    if shape.mla:
        m = shape.mla
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        q = (
            h * m.q_lora_rank + m.q_lora_rank * heads * qk + m.q_lora_rank
            if m.q_lora_rank
            else h * heads * qk
        )
        kv_a = h * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank
        kv_b = m.kv_lora_rank * heads * (m.qk_nope_head_dim + m.v_head_dim)
        out = heads * m.v_head_dim * h
        return q + kv_b + out, kv_a
    family = families.for_model_type(shape.model_type)
    q_bias, kv_bias = (heads * hd, 2 * kv * hd) if shape.qkv_bias else (0, 0)
    out_bias = h if family.out_bias else 0
    sinks = heads if family.attention_sinks else 0  # one learned attention sink per head
    q_and_out = 2 * h * heads * hd + q_bias + out_bias + sinks
    return q_and_out, 2 * h * kv * hd + kv_bias


def _mlp_params(shape: Shape, inner: int) -> int:
    if shape.gated_mlp:
        return 3 * shape.hidden * inner
    return 2 * shape.hidden * inner + inner + shape.hidden  # fc1, fc2 with biases


def layer_params(shape: Shape) -> list[LayerParams]:
    family = families.for_model_type(shape.model_type)
    attention, kv_projection = _attention_params(shape)
    norms = family.layer_norm_vectors * shape.hidden + shape.extra_norm_params_per_layer
    layers = []
    for index in range(shape.layers):
        moe = shape.moe
        is_moe = moe is not None and index >= shape.layers - moe.moe_layers
        experts = 0
        if is_moe and moe is not None:
            experts = moe.experts * _mlp_params(shape, moe.expert_intermediate)
            mlp = _mlp_params(shape, moe.shared_intermediate) if moe.shared_intermediate else 0
            router = shape.hidden * moe.experts + (shape.hidden if family.shared_expert_gate else 0)
            if family.expert_biases:
                # Router bias, and each expert's gate_up and down biases (kept in the dtype).
                router += moe.experts * (1 + 2 * moe.expert_intermediate + shape.hidden)
        else:
            mlp, router = _mlp_params(shape, shape.intermediate), 0
        layers.append(LayerParams(attention, kv_projection, mlp, norms + router, experts))
    return layers


def parameter_count(shape: Shape) -> int:
    """All parameters: embeddings, every layer (all experts), final norm, an untied lm_head, extras."""
    embed = shape.vocab * shape.hidden
    head = 0 if shape.tie_embeddings else embed
    family = families.for_model_type(shape.model_type)
    final_norm = shape.hidden * family.final_norm_vectors
    lm_bias = shape.vocab if family.lm_head_bias else 0
    body = sum(p.attention + p.kv_projection + p.mlp + p.experts + p.replicated for p in layer_params(shape))
    return embed + head + final_norm + lm_bias + body + shape.extra_params


def model_dtype(shape: Shape, dtype: Dtype) -> str:
    """vLLM's dtype "auto": the config's dtype, with float32 checkpoints served in bfloat16."""
    if dtype != "auto":
        return dtype
    configured = shape.torch_dtype.replace("torch.", "")
    return "bfloat16" if configured in ("float32", "float") else configured


def _pipeline_stages(layers: int, pp: int) -> list[int]:
    """Layers per stage as vLLM splits them (`get_pp_indices`): the remainder goes to the last ones."""
    base, extra = divmod(layers, pp)
    return [base + (1 if stage >= pp - extra else 0) for stage in range(pp)]


def _routed_expert_params(shape: Shape, params: int, tp: int, compute_capability: float) -> float:
    """One rank's share of a layer's routed experts (`params` of them in all), as the kernel lays them out."""
    if shape.moe is None or not shape.quantization or shape.quantization.method != "mxfp4":
        return params / tp
    experts, inner, hidden = shape.moe.experts, shape.moe.expert_intermediate / tp, shape.hidden
    if compute_capability >= 10.0:
        # Blackwell: FlashInfer's TRT-LLM kernels come first, padding both sizes to 256 in both matrices
        # (vllm/model_executor/layers/fused_moe/oracle/mxfp4.py). Not checked against a log.
        inner_pad, hidden_pad = _round_up(inner, 256), _round_up(hidden, 256)
        return experts * 3 * inner_pad * hidden_pad
    if compute_capability >= 9.0:
        # Hopper: the Triton kernel's layout pads each matrix's input dimension to a multiple
        # of 256 (2880 -> 3072). Inferred, not read (the triton_kernels package is not in the wheel):
        # it matches gpt-oss-20b's and -120b's loaded weights on an H100 within 0.3%, where the
        # unpadded size is 5-6% low (tests/fixtures/memory-logs).
        hidden_in, inner_in = _round_up(hidden, 256), _round_up(inner, 256)
        return experts * (2 * inner * hidden_in + hidden * inner_in)
    # Older GPUs run Marlin, which pads the intermediate size to 128 and the hidden size to 256 in both
    # matrices (vllm/model_executor/layers/fused_moe/oracle/mxfp4.py).
    inner_pad, hidden_pad = _round_up(inner, 128), _round_up(hidden, 256)
    return experts * 3 * inner_pad * hidden_pad


def _round_up(value: float, multiple: int) -> int:
    return math.ceil(value / multiple) * multiple


def weights_bytes(
    shape: Shape, tp: int, pp: int, dtype_bytes: int, compute_capability: float = DEFAULT_COMPUTE_CAPABILITY
) -> int:
    """Weights on the busiest GPU: the first pipeline stage (embeddings) or the last (lm_head)."""
    quant = shape.quantization
    linear = quant.linear_bytes_per_param if quant else dtype_bytes
    dense = dtype_bytes if quant and quant.experts_only else linear  # attention and non-expert MLPs
    per_layer = []
    # Each rank holds its share of the KV heads, at least one; MLA's latent projection is not split.
    kv_share = 1.0 if shape.mla else max(1, shape.kv_heads // tp) / shape.kv_heads
    for p in layer_params(shape):
        experts = _routed_expert_params(shape, p.experts, tp, compute_capability) if p.experts else 0
        tp_split = (p.attention + p.mlp) / tp * dense + experts * linear
        per_layer.append(tp_split + p.kv_projection * kv_share * dense + p.replicated * dtype_bytes)
    padded_vocab = _round_up(shape.vocab, VOCAB_PADDING)
    embed = math.ceil(padded_vocab / tp) * shape.hidden * dtype_bytes
    # A tied lm_head shares the embedding; on a separate last stage it is loaded there again.
    head = embed if (not shape.tie_embeddings or pp > 1) else 0
    extras = shape.extra_params * dtype_bytes  # vision tower, learned positions: not split by TP
    rope_cache = shape.max_position * shape.head_dim * dtype_bytes if not shape.mla else 0
    final_norm = shape.hidden * dtype_bytes
    if pp == 1:
        return int(sum(per_layer) + embed + head + extras + rope_cache + final_norm)
    stages = _pipeline_stages(shape.layers, pp)
    first = sum(per_layer[: stages[0]]) + embed + extras + rope_cache
    last = sum(per_layer[shape.layers - stages[-1] :]) + head + final_norm + rope_cache
    return int(max(first, last))


# --- KV cache --------------------------------------------------------------------------------


@dataclass(frozen=True)
class KvPerToken:
    """KV-cache bytes one token takes on the busiest GPU, by layer kind."""

    full: int
    sliding: int
    per_layer: int = 0  # one layer's bytes per token (every layer has the same page in vLLM)
    full_layers: int = 0
    sliding_layers: int = 0

    @property
    def total(self) -> int:
        return self.full + self.sliding


def kv_bytes_per_token(shape: Shape, tp: int, pp: int, kv_bytes: int) -> KvPerToken:
    if shape.mla:
        # MLA caches one latent vector and the rope key per token, the same on every TP rank.
        per_layer = (shape.mla.kv_lora_rank + shape.mla.qk_rope_head_dim) * kv_bytes
    else:
        per_layer = 2 * max(1, shape.kv_heads // tp) * shape.head_dim * kv_bytes
    layers = max(_pipeline_stages(shape.layers, pp))
    sliding = round(shape.sliding_layers * layers / shape.layers)
    full = layers - sliding
    return KvPerToken(full * per_layer, sliding * per_layer, per_layer, full, sliding)


@dataclass(frozen=True)
class KvLayout:
    """How the pinned vLLM lays the KV cache out and counts what a request needs, in blocks.

    vllm/v1/core/kv_cache_utils.py: layers of each attention kind are put in groups of `group_size`
    (the smaller kind's layer count, or the larger's when it is under 1.5 times that), a kind short of a
    whole group is padded; the pool has one block per group slot, `kv_cache // page // group_size`
    blocks of `page` (16 tokens x one layer's bytes). A request needs ceil(L / 16) blocks in each full
    group and, in each sliding group, ceil(min(window - 1 + max_num_batched_tokens, L) / 16) + 1
    (kv_cache_interface.py SlidingWindowSpec: chunked prefill keeps the window plus a chunk).
    """

    group_size: int
    full_groups: int
    sliding_groups: int
    page_bytes: int

    @property
    def block_bytes(self) -> int:
        """What one block of the pool takes: a page for every layer slot of a group."""
        return self.page_bytes * self.group_size

    def blocks_per_request(self, max_model_len: int, window: int | None, batched: int) -> int:
        full = self.full_groups * math.ceil(max_model_len / BLOCK_SIZE)
        if not self.sliding_groups:
            return full
        held = min((window or 0) - 1 + batched, max_model_len)
        return full + self.sliding_groups * (math.ceil(held / BLOCK_SIZE) + 1)


def kv_layout(per_token: KvPerToken) -> KvLayout:
    full, sliding = per_token.full_layers, per_token.sliding_layers
    if not full or not sliding:
        group, full_groups, sliding_groups = full + sliding, int(full > 0), int(sliding > 0)
    else:
        low, high = min(full, sliding), max(full, sliding)
        group = high if high < low * 1.5 else low
        full_groups, sliding_groups = math.ceil(full / group), math.ceil(sliding / group)
    return KvLayout(group, full_groups, sliding_groups, per_token.per_layer * BLOCK_SIZE)


# --- the estimate ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """The engine arguments memory depends on; None takes the pinned vLLM's default."""

    gpu_total_bytes: float  # what CUDA reports; a whole number of bytes, or GiB x GiB from a flag
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    dtype: Dtype = "auto"
    kv_cache_dtype: KvDtype = "auto"
    max_model_len: int | None = None
    max_num_seqs: int = DEFAULT_MAX_NUM_SEQS
    max_num_batched_tokens: int | None = None
    enable_chunked_prefill: bool = True
    enforce_eager: bool = False
    sampler: Sampler = "flashinfer"
    compute_capability: float = DEFAULT_COMPUTE_CAPABILITY


@dataclass(frozen=True)
class Estimate:
    """Bytes per GPU (the busiest one), and what the KV cache holds."""

    requested: int
    weights: int
    non_torch: int
    activation: int
    cuda_graph: int
    kv_cache: int
    kv_cache_tokens: int
    max_concurrency: float
    max_model_len: int
    max_num_batched_tokens: int
    kv_bytes_per_token: int
    kv_bytes_per_request: int  # one full-length sequence (sliding-window layers hold their window)
    outside_budget: int
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The CLI's keys (GiB = 2^30 bytes), then the details behind them."""
        gib = {k: round(v / GiB, 3) for k, v in asdict(self).items() if k in _GIB_KEYS}
        return {
            "weights_gib": gib["weights"],
            "non_torch_gib": gib["non_torch"],
            "activation_gib": gib["activation"],
            "cuda_graph_gib": gib["cuda_graph"],
            "kv_cache_gib": gib["kv_cache"],
            "kv_cache_tokens": self.kv_cache_tokens,
            "max_concurrency": round(self.max_concurrency, 2),
            "requested_gib": gib["requested"],
            "outside_budget_gib": gib["outside_budget"],
            "kv_cache_bytes_per_token": self.kv_bytes_per_token,
            "max_model_len": self.max_model_len,
            "max_num_batched_tokens": self.max_num_batched_tokens,
            "notes": self.notes,
        }


_GIB_KEYS = ("requested", "weights", "non_torch", "activation", "cuda_graph", "kv_cache", "outside_budget")


@dataclass(frozen=True)
class Origin:
    """Where a setting came from, for the error that names it: a command-line flag, or a file's key."""

    source: str
    field: str | None = None


# The memory command's flags, which name each setting unless the caller says where it came from.
CLI_ORIGINS: Mapping[str, Origin] = MappingProxyType(
    {
        "gpu_total_bytes": Origin("--gpu-total-gib"),
        "gpu_memory_utilization": Origin("--gpu-memory-utilization"),
        "tensor_parallel_size": Origin("--tensor-parallel-size"),
        "pipeline_parallel_size": Origin("--pipeline-parallel-size"),
        "dtype": Origin("--dtype"),
        "kv_cache_dtype": Origin("--kv-cache-dtype"),
        "max_model_len": Origin("--max-model-len"),
        "max_num_seqs": Origin("--max-num-seqs"),
        "max_num_batched_tokens": Origin("--max-num-batched-tokens"),
        "enable_chunked_prefill": Origin("--no-chunked-prefill"),
        "enforce_eager": Origin("--enforce-eager"),
        "sampler": Origin("--sampler"),
        "compute_capability": Origin("--compute-capability"),
    }
)
# The Settings that are vLLM engine arguments of the same name (a model.json's keys).
ENGINE_ARG_SETTINGS = (
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "dtype",
    "kv_cache_dtype",
    "max_model_len",
    "max_num_seqs",
    "max_num_batched_tokens",
    "enable_chunked_prefill",
    "enforce_eager",
)


def engine_args_origins(source: str | Path) -> dict[str, Origin]:
    """Origins for Settings read from an engine-arguments file: `model.json: max_model_len`, ..."""
    return {name: Origin(str(source), name) for name in ENGINE_ARG_SETTINGS}


SERVED_DTYPES = ("auto", *DTYPE_BYTES)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: float) -> str:
    """A number for an error message, `:g` style; a whole number too large for a float, shortened."""
    return f"{value:g}" if isinstance(value, float) or abs(value) < 1 << 64 else show(value)


def _gib(total: float, unit: str = "") -> str:
    """A size in GiB for an error message (`unit` after it); one too large for a float, in bytes."""
    if isinstance(total, float) or abs(total) < 1 << 1000:
        return f"{total / GiB:g}{unit}"
    return f"{show(total)} bytes"


def _check(shape: Shape, settings: Settings, source: str, origins: Mapping[str, Origin] | None = None) -> int:
    """The max_model_len to use; InputError for settings vLLM would refuse, named where they came from."""

    def bad(name: str, message: str) -> InputError:
        origin = (origins or {}).get(name) or CLI_ORIGINS[name]
        return InputError(origin.source, origin.field, message)

    utilization = settings.gpu_memory_utilization
    if not _is_number(utilization):
        raise bad("gpu_memory_utilization", f"{show(utilization)} is not a number")
    if not 0 < utilization <= 1:  # NaN included
        raise bad("gpu_memory_utilization", f"{_number(utilization)} is outside (0, 1]")
    total = settings.gpu_total_bytes
    if not _is_number(total):
        raise bad("gpu_total_bytes", f"{show(total)} is not a size")
    if not total > 0:  # NaN included
        raise bad("gpu_total_bytes", f"{_gib(total)} is not a positive size")
    if not total <= MAX_GPU_BYTES:
        raise bad(
            "gpu_total_bytes",
            f"{_gib(total, ' GiB')} is more than {MAX_GPU_BYTES // GiB} GiB, the most one GPU has",
        )
    for name, most in (("tensor_parallel_size", MAX_PARALLEL), ("pipeline_parallel_size", MAX_PARALLEL),
                       ("max_num_seqs", MAX_SEQUENCES)):  # fmt: skip
        value = getattr(settings, name)
        if not _is_whole(value) or value < 1:
            raise bad(name, f"{show(value)} is not a positive whole number")
        if value > most:
            raise bad(name, f"{show(value)} is more than {most}, the most tritonfleet sizes")
    tp, pp = settings.tensor_parallel_size, settings.pipeline_parallel_size
    if shape.heads % tp:
        raise InputError(
            source,
            "num_attention_heads",
            f"{shape.heads} attention heads do not divide by tensor_parallel_size {tp}",
        )
    if not shape.mla and (shape.kv_heads % tp if shape.kv_heads >= tp else tp % shape.kv_heads):
        raise InputError(
            source,
            "num_key_value_heads",
            f"{shape.kv_heads} KV heads and tensor_parallel_size {tp} do not divide",
        )
    capability = settings.compute_capability
    if not _is_number(capability):
        raise bad("compute_capability", f"{show(capability)} is not a number")
    if not 7.0 <= capability < 20:
        raise bad(
            "compute_capability",
            f"{_number(capability)} is not a CUDA GPU generation vLLM runs on (7.0 or newer)",
        )
    if pp > shape.layers:
        raise bad("pipeline_parallel_size", f"{pp} stages for {shape.layers} layers")
    length = settings.max_model_len if settings.max_model_len is not None else shape.max_position
    if not _is_whole(length):
        raise bad("max_model_len", f"{show(length)} is not a whole number of tokens")
    if length <= 0:
        raise bad("max_model_len", f"{show(length)} is not a positive number of tokens")
    if length > shape.max_position:
        raise bad(
            "max_model_len", f"{show(length)} exceeds the model's maximum of {shape.max_position} tokens"
        )
    batched = settings.max_num_batched_tokens
    if batched is not None and not _is_whole(batched):
        raise bad("max_num_batched_tokens", f"{show(batched)} is not a whole number of tokens")
    if batched is not None and batched <= 0:
        raise bad("max_num_batched_tokens", f"{show(batched)} is not positive")
    if batched is not None and batched > MAX_TOKENS:
        raise bad(
            "max_num_batched_tokens",
            f"{show(batched)} is more than {MAX_TOKENS}, the most tritonfleet sizes",
        )
    if settings.dtype not in SERVED_DTYPES:
        raise bad("dtype", f"{show(settings.dtype)} is not a dtype vLLM serves ({', '.join(SERVED_DTYPES)})")
    if settings.kv_cache_dtype not in ("auto", "fp8"):
        raise bad("kv_cache_dtype", f"{show(settings.kv_cache_dtype)} is not auto or fp8")
    if settings.sampler not in tuple(SAMPLER_LOGITS_COPIES):
        raise bad("sampler", f"{show(settings.sampler)} is not {' or '.join(SAMPLER_LOGITS_COPIES)}")
    for name in ("enable_chunked_prefill", "enforce_eager"):
        if not isinstance(getattr(settings, name), bool):
            raise bad(name, f"{show(getattr(settings, name))} is not true or false")
    return length


def _activation_bytes(
    shape: Shape, tp: int, tokens: int, seqs: int, dtype_bytes: int, sampler: Sampler
) -> int:
    """The torch peak of vLLM's profile run: one forward pass over `tokens`, then the sampler."""
    h = shape.hidden
    if shape.moe:
        moe = shape.moe
        inner = moe.top_k * moe.expert_intermediate + moe.shared_intermediate
    else:
        inner = shape.intermediate
    qkv = (shape.heads + 2 * shape.kv_heads) * shape.head_dim
    # Residual, normed input and attention output stay live while the MLP holds gate+up and its product.
    per_token = 3 * h + max(qkv // tp + shape.heads * shape.head_dim // tp, 3 * inner // tp)
    forward = tokens * per_token * dtype_bytes
    # The sampler runs after the forward pass has freed its intermediates: the peak is the larger one.
    sampling = int(min(seqs, tokens) * shape.vocab * 4 * SAMPLER_LOGITS_COPIES[sampler])
    return max(forward, sampling)


def _cuda_graph_bytes(shape: Shape, settings: Settings) -> int:
    """The CUDA-graph estimate vLLM subtracts from the KV budget."""
    if settings.enforce_eager:
        return 0
    largest = min(2 * settings.max_num_seqs, MAX_CUDAGRAPH_CAPTURE_SIZE)
    sizes = [s for s in (1, 2, 4, *range(8, 257, 8), *range(272, 513, 16)) if s <= largest]
    layers = max(_pipeline_stages(shape.layers, settings.pipeline_parallel_size))
    per_graph = CUDA_GRAPH_BYTES_PER_LAYER_HIDDEN * layers * shape.hidden / DEFAULT_CAPTURE_SIZES
    return int(per_graph * len(sizes))


def estimate(
    shape: Shape,
    settings: Settings,
    source: str = "config.json",
    origins: Mapping[str, Origin] | None = None,
) -> Estimate:
    """The memory of one vLLM instance per GPU. InputError for settings vLLM would refuse: a setting is
    named by `origins` (Settings field -> where it came from, e.g. engine_args_origins(model.json)), else
    by the memory command's flag (CLI_ORIGINS); the model's own limits are named in `source`."""
    max_model_len = _check(shape, settings, source, origins)
    tp, pp = settings.tensor_parallel_size, settings.pipeline_parallel_size
    dtype_bytes = DTYPE_BYTES[model_dtype(shape, settings.dtype)]
    kv_bytes = 1 if settings.kv_cache_dtype == "fp8" else dtype_bytes
    batched = settings.max_num_batched_tokens or DEFAULT_MAX_NUM_BATCHED_TOKENS
    if settings.max_num_batched_tokens is None and not settings.enable_chunked_prefill:
        batched = max(batched, max_model_len)
    notes = []
    if not settings.enable_chunked_prefill and batched < max_model_len:
        notes.append("max_num_batched_tokens < max_model_len without chunked prefill: vLLM refuses this")

    requested = math.ceil(settings.gpu_total_bytes * settings.gpu_memory_utilization)
    weights = weights_bytes(shape, tp, pp, dtype_bytes, settings.compute_capability)
    ranks = tp * pp
    non_torch = NON_TORCH_BYTES + (NON_TORCH_TP_BYTES if tp > 1 else 0)
    activation = _activation_bytes(shape, tp, batched, settings.max_num_seqs, dtype_bytes, settings.sampler)
    cuda_graph = _cuda_graph_bytes(shape, settings)
    kv_cache = max(0, requested - weights - non_torch - activation - cuda_graph)

    per_token = kv_bytes_per_token(shape, tp, pp, kv_bytes)
    layout = kv_layout(per_token)
    blocks = kv_cache // layout.page_bytes // layout.group_size if layout.page_bytes else 0
    request_blocks = layout.blocks_per_request(max_model_len, shape.sliding_window, batched)
    per_request = request_blocks * layout.block_bytes
    concurrency = blocks / request_blocks if request_blocks else 0.0
    # vLLM logs "GPU KV cache size" as int(max concurrency x max_model_len) (get_kv_cache_capacity),
    # which is blocks x 16 when every layer attends in full, and less with sliding-window groups.
    tokens = int(concurrency * max_model_len)
    if kv_cache == 0:
        notes.append("no memory is left for the KV cache: vLLM fails at start")
    outside = CUDA_CONTEXT_BYTES + (NCCL_BYTES if ranks > 1 else 0)
    return Estimate(
        requested=requested,
        weights=weights,
        non_torch=non_torch,
        activation=activation,
        cuda_graph=cuda_graph,
        kv_cache=kv_cache,
        kv_cache_tokens=int(tokens),
        max_concurrency=concurrency,
        max_model_len=max_model_len,
        max_num_batched_tokens=batched,
        kv_bytes_per_token=per_token.total,
        kv_bytes_per_request=per_request,
        outside_budget=outside,
        notes=notes,
    )
