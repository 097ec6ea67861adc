"""gpu_memory_utilization per model for one host, from its GPUs and the models that share them.

Placement follows how the vllm backend starts an engine: a model with tensor_parallel_size x
pipeline_parallel_size = n uses GPUs 0..n-1 of the container, so models on one host share GPU 0.
Each model needs, on its busiest GPU, the non-KV memory of the estimate (memory.py) plus the KV cache
for its target, all times (1 + margin). On every GPU, the tenants' budgets (utilization x total) and
what each keeps outside its budget (CUDA context, NCCL) must fit in the GPU's total. What is left is
shared out to the tenants, up to the pinned vLLM's default utilization, and reported as surplus.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tritonfleet.errors import InputError
from tritonfleet.host import gpus
from tritonfleet.repository import schema
from tritonfleet.serving.contract import ENGINE_FILE
from tritonfleet.sizing import MARGIN, memory

UTILIZATION_CAP = memory.DEFAULT_GPU_MEMORY_UTILIZATION  # leave what vLLM leaves by default
HF_CONFIG = "hf-config.json"  # the model's Hugging Face config.json, kept beside config.pbtxt


@dataclass(frozen=True)
class Target:
    """What a model must hold in its KV cache: full-length sequences at once, or a number of tokens."""

    concurrency: int = 1
    tokens: int | None = None


@dataclass(frozen=True)
class Request:
    name: str
    shape: memory.Shape
    settings: memory.Settings  # gpu_total_bytes and gpu_memory_utilization are the planner's to set
    target: Target
    source: str  # the model.json its settings came from: errors about them name it
    config_source: str = ""  # the hf-config.json its shape came from: errors about the model name it
    facts_source: str = ""  # the host facts the GPU generation came from

    def estimate(self, settings: memory.Settings) -> memory.Estimate:
        origins = memory.engine_args_origins(self.source)
        if self.facts_source:
            origins["compute_capability"] = memory.Origin(self.facts_source, "gpus.compute_capability")
        return memory.estimate(self.shape, settings, self.config_source or self.source, origins)


@dataclass(frozen=True)
class ModelPlan:
    name: str
    gpus: tuple[int, ...]
    utilization: float
    needed_utilization: float
    estimate: memory.Estimate
    headroom_bytes: int  # unplanned memory left on this model's busiest GPU


@dataclass
class HostPlan:
    models: list[ModelPlan]
    start_order: list[str]
    surplus_bytes: dict[int, int]  # per GPU, after every tenant's budget and outside-budget memory
    margin: float
    notes: list[str] = field(default_factory=list)


def compute_capability(facts: gpus.HostFacts) -> float:
    """The oldest GPU generation on a host; the default when the facts lack it."""
    found = []
    for gpu in facts.gpus:
        try:
            found.append(float(gpu.compute_capability))
        except (TypeError, ValueError):
            continue
    return min(found, default=memory.DEFAULT_COMPUTE_CAPABILITY)


# model.json's dtype spellings (vLLM's ModelDType) as the estimate names them.
_DTYPES = {"auto": "auto", "half": "float16", "float16": "float16", "bfloat16": "bfloat16"}
_DTYPES |= {"float": "float32", "float32": "float32"}


def kv_cache_dtype(value: str) -> str | None:
    """vLLM's cache dtype as the estimate sizes it ("auto" or "fp8"); None when it cannot size it."""
    if value in ("auto", "float16", "bfloat16"):
        return "auto"  # two bytes a value, as "auto" is for the 16-bit dtypes models are served in
    return "fp8" if value in ("fp8", "fp8_e4m3", "fp8_e5m2") else None


def settings_from_engine_args(
    given: schema.EngineJson,
    gpu_total_bytes: int,
    compute_capability: float = memory.DEFAULT_COMPUTE_CAPABILITY,
    source: str = ENGINE_FILE,
) -> memory.Settings:
    """The memory-relevant engine arguments of a checked model.json; what it omits takes vLLM's default."""
    defaults = memory.Settings(gpu_total_bytes=gpu_total_bytes, compute_capability=compute_capability)
    dtype = _DTYPES.get(given.dtype)
    kv_dtype = kv_cache_dtype(given.kv_cache_dtype)
    if dtype is None or kv_dtype is None:
        field_name, value = (
            ("dtype", given.dtype) if dtype is None else ("kv_cache_dtype", given.kv_cache_dtype)
        )
        raise InputError(source, field_name, f"{value!r} is not a dtype tritonfleet can size")
    return replace(
        defaults,
        tensor_parallel_size=given.tensor_parallel_size,
        pipeline_parallel_size=given.pipeline_parallel_size,
        dtype=dtype,  # type: ignore[arg-type]
        kv_cache_dtype=kv_dtype,  # type: ignore[arg-type]
        max_model_len=given.max_model_len,
        max_num_seqs=given.max_num_seqs or defaults.max_num_seqs,
        max_num_batched_tokens=given.max_num_batched_tokens,
        enable_chunked_prefill=True if given.enable_chunked_prefill is None else given.enable_chunked_prefill,
        enforce_eager=given.enforce_eager,
    )


def _needed_bytes(request: Request, total: int, margin: float) -> int:
    """Budget bytes on the busiest GPU for the non-KV parts plus the target's KV cache, with margin."""
    whole = replace(request.settings, gpu_total_bytes=total, gpu_memory_utilization=1.0)
    probe = request.estimate(whole)
    non_kv = probe.weights + probe.non_torch + probe.activation + probe.cuda_graph
    target = request.target
    if target.tokens is not None:
        kv = target.tokens * probe.kv_bytes_per_token
    else:
        kv = target.concurrency * probe.kv_bytes_per_request
    return math.ceil((non_kv + kv) * (1 + margin))


def _fixes(request: Request, total: int, available: int, margin: float, gpus: int) -> list[str]:
    """The cheapest changes that would make this model fit the memory available to it."""
    fixes = []
    s = request.settings
    doubled = s.tensor_parallel_size * 2
    if request.shape.heads % doubled == 0 and doubled * s.pipeline_parallel_size <= gpus:
        bigger = replace(request, settings=replace(s, tensor_parallel_size=doubled))
        try:
            if _needed_bytes(bigger, total, margin) <= available:
                fixes.append(f"tensor_parallel_size {doubled}")
        except InputError:
            pass
    # The longest max_model_len that fits, in steps of 1024 tokens (needs grow with the length).
    low, high = 0, (s.max_model_len or request.shape.max_position) // 1024
    while low < high:
        middle = (low + high + 1) // 2
        shorter = replace(request, settings=replace(s, max_model_len=middle * 1024))
        if _needed_bytes(shorter, total, margin) <= available:
            low = middle
        else:
            high = middle - 1
    if low:
        fixes.append(f"max_model_len <= {low * 1024}")
    if s.kv_cache_dtype != "fp8":
        fp8 = replace(request, settings=replace(s, kv_cache_dtype="fp8"))
        if _needed_bytes(fp8, total, margin) <= available:
            fixes.append("kv_cache_dtype fp8")
    target = request.target
    if target.tokens is not None or target.concurrency > 1:
        flag, asked = (
            ("--kv-tokens", target.tokens)
            if target.tokens is not None
            else ("--concurrency", target.concurrency)
        )
        low, high = 0, int(asked) - 1
        while low < high:  # the largest target that fits, as the target's own flag counts it
            middle = (low + high + 1) // 2
            smaller = Target(tokens=middle) if flag == "--kv-tokens" else Target(concurrency=middle)
            if _needed_bytes(replace(request, target=smaller), total, margin) <= available:
                low = middle
            else:
                high = middle - 1
        if low:
            fixes.append(f"{flag} {request.name}={low}")
    return fixes


def plannable(models: Sequence[Any]) -> tuple[list[Any], list[str]]:
    """The models the planner can size, and a note for each it leaves alone."""
    sized, skipped = [], []
    for model in models:
        if "kv_cache_memory_bytes" in model.engine_args:
            skipped.append(f"{model.name}: not planned (model.json fixes kv_cache_memory_bytes)")
        elif not (model.folder / HF_CONFIG).exists():  # one that is there but unreadable is an error
            skipped.append(f"{model.name}: not planned (no {HF_CONFIG} beside its config.pbtxt)")
        elif kv_cache_dtype(model.settings.kv_cache_dtype) is None:
            why = f"kv_cache_dtype {model.settings.kv_cache_dtype} is not one tritonfleet can size"
            skipped.append(f"{model.name}: not planned ({why})")
        else:
            sized.append(model)
    return sized, skipped


def requests_for(
    models: Sequence[Any],
    gpu_total: int,
    targets: Mapping[str, Target],
    compute_capability: float = memory.DEFAULT_COMPUTE_CAPABILITY,
    facts_source: str = "",
) -> list[Request]:
    """One request per model of a loaded repository (repository.Model), from its hf-config.json."""
    requests = []
    for model in models:
        config_file = model.folder / HF_CONFIG
        shape = memory.shape_from_config(memory.read_config(config_file), str(config_file))
        if len(getattr(model, "served", ())) > 1:
            raise InputError(
                model.folder / "config.pbtxt",
                "version_policy",
                f"serves {len(model.served)} versions ({', '.join(model.versions)}), each its own vLLM "
                "engine; the planner sizes one engine per model: serve one version (latest 1)",
            )
        if getattr(model, "instances", 1) > 1:
            raise InputError(
                model.folder / "config.pbtxt",
                "instance_group.count",
                f"{model.instances} instances, each its own vLLM engine on the same GPUs; the planner sizes "
                "one engine per model: use count 1 (vLLM batches requests itself)",
            )
        source = str(model.engine_file)
        settings = settings_from_engine_args(model.settings, gpu_total, compute_capability, source)
        batched = settings.max_num_batched_tokens
        length = settings.max_model_len or shape.max_position
        if not settings.enable_chunked_prefill and batched is not None and batched < length:
            raise InputError(
                source,
                "max_num_batched_tokens",
                f"{batched} is below max_model_len {length} without chunked prefill: vLLM refuses this",
            )
        target = targets.get(model.name, Target())
        requests.append(Request(model.name, shape, settings, target, source, str(config_file), facts_source))
    return requests


def plan_host(
    requests: Sequence[Request],
    gpu_totals: Sequence[int],
    margin: float = MARGIN,
    labels: Sequence[int] | None = None,
) -> HostPlan:
    """Utilizations for every model on one host; InputError when they cannot all fit.

    GPUs are placed by position (the container's CUDA order) and reported by `labels`, the host's own
    GPU indices (nvidia-smi's), which are the positions unless given.
    """
    label = list(labels) if labels is not None else list(range(len(gpu_totals)))
    placed: dict[str, tuple[int, ...]] = {}
    for request in requests:
        n = request.settings.tensor_parallel_size * request.settings.pipeline_parallel_size
        if n > len(gpu_totals):
            raise InputError(
                request.source, "tensor_parallel_size", f"needs {n} GPUs, the host has {len(gpu_totals)}"
            )
        placed[request.name] = tuple(range(n))
    outside = {
        r.name: memory.CUDA_CONTEXT_BYTES + (memory.NCCL_BYTES if len(placed[r.name]) > 1 else 0)
        for r in requests
    }
    available = {
        g: total - sum(outside[r.name] for r in requests if g in placed[r.name])
        for g, total in enumerate(gpu_totals)
    }
    needs: dict[str, float] = {}
    for request in requests:
        total = min(gpu_totals[g] for g in placed[request.name])
        needs[request.name] = math.ceil(_needed_bytes(request, total, margin) / total * 1000) / 1000
    for g, total in enumerate(gpu_totals):
        tenants = [r for r in requests if g in placed[r.name]]
        used = sum(needs[r.name] * total for r in tenants)
        if used > available[g]:
            worst = max(tenants, key=lambda r: needs[r.name])
            own = available[g] - sum(needs[r.name] * total for r in tenants if r is not worst)
            gib = (needs[worst.name] * total) / memory.GiB
            co = f" beside {', '.join(r.name for r in tenants if r is not worst)}" if len(tenants) > 1 else ""
            found = _fixes(worst, total, int(own), margin, len(gpu_totals))
            fixes = (
                "use " + ", or ".join(found)
                if found
                else "no single change fits: more or larger GPUs, or a quantized model"
            )
            has = max(own, 0) / memory.GiB
            raise InputError(
                worst.source,
                None,
                f"{worst.name} needs {gib:.1f} GiB on GPU {label[g]}{co}, has {has:.1f}: {fixes}",
            )
    slack = {
        g: available[g] / total - sum(needs[r.name] for r in requests if g in placed[r.name])
        for g, total in enumerate(gpu_totals)
    }
    sharing = {g: sum(1 for r in requests if g in placed[r.name]) for g in range(len(gpu_totals))}
    plans = []
    for request in requests:
        extra = min(slack[g] / sharing[g] for g in placed[request.name])
        utilization = max(
            needs[request.name], min(UTILIZATION_CAP, math.floor((needs[request.name] + extra) * 1000) / 1000)
        )
        total = min(gpu_totals[g] for g in placed[request.name])
        e = request.estimate(
            replace(request.settings, gpu_total_bytes=total, gpu_memory_utilization=utilization)
        )
        plans.append(ModelPlan(request.name, placed[request.name], utilization, needs[request.name], e, 0))
    used_by = {
        g: sum(p.utilization * gpu_totals[g] for p in plans if g in p.gpus) for g in range(len(gpu_totals))
    }
    surplus = {g: int(available[g] - used_by[g]) for g in range(len(gpu_totals))}
    plans = [
        replace(p, headroom_bytes=min(surplus[g] for g in p.gpus), gpus=tuple(label[g] for g in p.gpus))
        for p in plans
    ]
    surplus = {label[g]: b for g, b in surplus.items()}
    # vLLM checks free memory when it starts and measures it while it profiles, so engines sharing a GPU
    # must start one after the other. The budgets above fit in any order; the widest model first keeps
    # the most GPUs' worth of memory settled before the smaller tenants measure.
    order = [p.name for p in sorted(plans, key=lambda p: (-len(p.gpus), -p.utilization, p.name))]
    notes = []
    if any(sharing[g] > 1 for g in sharing):
        notes.append(
            "models share a GPU: they must load one at a time (compose.yaml runs tritonserver with "
            "--model-load-thread-count=1); the utilizations fit whichever loads first"
        )
    return HostPlan(plans, order, surplus, margin, notes)


# --- a model repository on a host: the one planning path ---------------------------------------


@dataclass
class RepositoryPlan:
    """The plan for the models of a repository on one host; `host` is None when none could be sized."""

    host: HostPlan | None
    skipped: list[str]  # "NAME: not planned (why)", one per model left as its model.json has it

    def utilizations(self) -> dict[str, float]:
        return {p.name: p.utilization for p in self.host.models} if self.host else {}

    @property
    def notes(self) -> list[str]:
        return [*(self.host.notes if self.host else []), *self.skipped]


def gpu_totals(facts: gpus.HostFacts, source: str) -> list[int]:
    """What each GPU of the host offers the planner; InputError for a host it cannot plan for."""
    if not facts.gpus:
        probe = facts.probe
        detail = "" if probe.status == "ok" else f" (probe {probe.status}: {probe.detail})"
        raise InputError(source, "gpus", f"no GPU to plan for{detail}")
    for gpu in facts.gpus:
        if (gpu.mig_mode or "").lower() == "enabled":
            raise InputError(
                source,
                f"gpus[{gpu.index}].mig_mode",
                "MIG is enabled: vLLM would see one MIG slice, not the whole GPU; tritonfleet plans whole "
                "GPUs only (disable MIG, or size the model by hand with kv_cache_memory_bytes)",
            )
    return [g.memory_usable_bytes for g in facts.gpus]


def plan_repository(
    models: Sequence[Any],
    facts: gpus.HostFacts,
    facts_source: str,
    targets: Mapping[str, Target] | None = None,
    margin: float = MARGIN,
) -> RepositoryPlan:
    """Sizes every plannable model of a loaded repository (repository.Model) for one host.

    `tritonfleet plan` prints this and `tritonfleet render --host-facts` writes it, so the two agree.
    """
    targets = dict(targets or {})
    totals = gpu_totals(facts, facts_source)
    if not 0 <= margin < 1 or not math.isfinite(margin):
        raise InputError("--margin", None, f"{margin:g} is outside [0, 1)")
    sized, skipped = plannable(models)
    names = {m.name for m in models}
    for name in sorted(targets):
        if name not in names:
            known = ", ".join(sorted(names))
            why = f"no such model among those planned ({known})"
            raise InputError("--concurrency/--kv-tokens", name, why)
        if name not in {m.name for m in sized}:
            why = next(s for s in skipped if s.startswith(f"{name}: "))
            raise InputError(
                "--concurrency/--kv-tokens", name, f"has a target but is {why.split(': ', 1)[1]}"
            )
    if not sized:
        return RepositoryPlan(None, skipped)
    requests = requests_for(sized, min(totals), targets, compute_capability(facts), facts_source)
    host = plan_host(requests, totals, margin, labels=[g.index for g in facts.gpus])
    return RepositoryPlan(host, skipped)
