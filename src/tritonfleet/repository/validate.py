"""Checks a loaded model repository against the vllm backend's contract and a pinned vLLM.

Nothing here writes: `tritonfleet validate` is this module alone, and render runs it before writing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tritonfleet.errors import InputError
from tritonfleet.pins.engine_args import EngineArgSpec
from tritonfleet.repository.model import CONFIG_FILE, Model, Version
from tritonfleet.repository.protobuf import model_config
from tritonfleet.serving.contract import (
    BACKEND,
    ENGINE_FILE,
    INPUTS,
    METRICS_PARAMETER,
    OUTPUTS,
    REQUIRED_INPUTS,
    REQUIRED_OUTPUTS,
)

if TYPE_CHECKING:
    from tritonfleet.host.gpus import HostFacts


def _enum_name(enum: Any, value: int, source: Path, field: str) -> str:
    """The name of a protobuf enum value; text format also takes bare numbers, which may name none."""
    try:
        return str(enum.Name(value))
    except ValueError:
        raise InputError(source, field, f"{value} is not one of {', '.join(enum.keys())}") from None


def _check_tensors(model: Model, kind: str, tensors: Iterable[Any]) -> None:
    mc = model_config()
    contract, required = (INPUTS, REQUIRED_INPUTS) if kind == "input" else (OUTPUTS, REQUIRED_OUTPUTS)
    source = model.folder / CONFIG_FILE
    seen: set[str] = set()
    for tensor in tensors:
        field = f"{kind}[{tensor.name}]"
        if tensor.name not in contract:
            raise InputError(source, field, f"not part of the vllm backend contract ({', '.join(contract)})")
        if tensor.name in seen:
            raise InputError(source, field, "declared twice")
        seen.add(tensor.name)
        data_type = _enum_name(mc.DataType, tensor.data_type, source, f"{field}.data_type")
        if data_type != contract[tensor.name]:
            raise InputError(
                source, f"{field}.data_type", f"is {data_type}, the backend uses {contract[tensor.name]}"
            )
        if list(tensor.dims) != [1]:
            raise InputError(source, f"{field}.dims", f"is {list(tensor.dims)}, the backend uses [1]")
        if kind == "input" and tensor.name not in required and not tensor.optional:
            raise InputError(source, f"{field}.optional", "must be true: clients may leave this input out")
    for name in sorted(required - seen):
        raise InputError(source, f"{kind}[{name}]", "missing: the vllm backend requires it")


def validate_config(model: Model) -> None:
    mc = model_config()
    config, source = model.config, model.folder / CONFIG_FILE
    if config.name and config.name != model.name:
        raise InputError(
            source, "name", f"is {config.name!r} but the folder is {model.name!r}; Triton refuses that"
        )
    if config.platform:
        raise InputError(source, "platform", "must be empty: the vllm backend is chosen by `backend`")
    if config.backend != BACKEND:
        raise InputError(source, "backend", f"is {config.backend!r}, expected {BACKEND!r}")
    if config.max_batch_size != 0:
        raise InputError(source, "max_batch_size", "must be 0: vLLM batches inside the engine")
    if not config.model_transaction_policy.decoupled:
        raise InputError(
            source, "model_transaction_policy.decoupled", "must be true: the backend streams its responses"
        )
    scheduler = config.WhichOneof("scheduling_choice")
    if scheduler is not None:
        raise InputError(source, scheduler, "not allowed for a decoupled vLLM model: vLLM schedules itself")
    if config.response_cache.enable:
        raise InputError(source, "response_cache.enable", "must be false: decoupled models cannot be cached")
    metrics = config.parameters.get(METRICS_PARAMETER)
    if metrics is None or metrics.string_value != "true":
        got = "missing" if metrics is None else f"is {metrics.string_value!r}"
        raise InputError(source, f"parameters[{METRICS_PARAMETER}]", f'{got}; set string_value: "true"')
    if not config.instance_group:
        raise InputError(source, "instance_group", "missing: declare one group of kind KIND_MODEL")
    for index, group in enumerate(config.instance_group):
        kind = _enum_name(mc.ModelInstanceGroup.Kind, group.kind, source, f"instance_group[{index}].kind")
        if model.gpus_per_instance > 1 and kind != "KIND_MODEL":
            raise InputError(
                source,
                f"instance_group[{index}].kind",
                f"is {kind}; tensor/pipeline parallel ({model.gpus_per_instance} GPUs) needs KIND_MODEL",
            )
        if group.count < 0:
            raise InputError(source, f"instance_group[{index}].count", f"{group.count}; must be at least 1")
    _check_tensors(model, "input", config.input)
    _check_tensors(model, "output", config.output)


# vLLM's annotations for scalar engine arguments, mapped to the JSON values that satisfy them.
_SCALAR_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "str": (str,),
}


def _accepts(annotation: str, value: Any, aliases: dict[str, list[str]]) -> bool | None:
    """Whether a JSON value fits an annotation such as `int | None` or `CacheDType`; None: cannot tell."""
    allowed: list[type] = []
    literals: list[str] = []
    for part in (p.strip() for p in annotation.split("|")):
        if part == "None":
            allowed.append(type(None))
        elif part in _SCALAR_TYPES:
            allowed.extend(_SCALAR_TYPES[part])
        elif part in aliases:
            literals.extend(aliases[part])
        else:
            return None  # lists, dicts, configs: vLLM itself checks those
    if isinstance(value, bool) and bool not in allowed:
        return False  # JSON true is not a number, although Python's bool is an int
    if isinstance(value, tuple(allowed)):
        return True
    return isinstance(value, str) and value in literals


def _expected(annotation: str, aliases: dict[str, list[str]]) -> str:
    parts = [p.strip() for p in annotation.split("|")]
    shown = [" | ".join(json.dumps(v) for v in aliases[p]) if p in aliases else p for p in parts]
    return " | ".join(shown)


def validate_engine_args(model: Model, spec: EngineArgSpec, version: Version | None = None) -> None:
    version = version or model.latest
    source = model.folder / version.name / ENGINE_FILE
    engine = f"{spec.distribution} {spec.version}"
    for key, value in version.engine_args.items():
        if key not in spec.arguments:
            hint = spec.suggest(key)
            tail = f"; did you mean {hint!r}?" if hint else ""
            raise InputError(source, key, f"unknown engine argument for {engine}{tail}")
        if _accepts(spec.arguments[key], value, spec.aliases) is False:
            expected = _expected(spec.arguments[key], spec.aliases)
            raise InputError(source, key, f"{json.dumps(value)[:60]} does not fit {engine}'s type {expected}")
    model_id = version.engine_args.get("model")
    if not isinstance(model_id, str) or not model_id.strip():
        raise InputError(source, "model", "missing: a Hugging Face id or a path to the weights")


def check_fits_host(model: Model, facts: HostFacts, facts_source: str) -> None:
    have = len(facts.gpus)
    if have == 0:
        detail = "" if facts.probe.status == "ok" else f" (probe {facts.probe.status}: {facts.probe.detail})"
        raise InputError(facts_source, "gpus", f"the host has no GPU{detail}; {model.name} needs one")
    indices = {gpu.index for gpu in facts.gpus}
    for number, group in enumerate(model.config.instance_group):
        missing = [g for g in group.gpus if g not in indices]
        if missing:
            raise InputError(
                model.folder / CONFIG_FILE,
                f"instance_group[{number}].gpus",
                f"GPU {missing[0]} is not on the host: {facts_source} has GPUs {sorted(indices)}",
            )
    needed = model.gpus_per_instance * model.instances
    if needed <= have:
        return
    tp, pp = model.tensor_parallel_size, model.pipeline_parallel_size
    shape = f"{model.instances} instance(s) x tp {tp} x pp {pp}"
    message = f"{shape} needs {needed} GPU(s), but {facts_source} has {have}"
    if model.instances > 1 and model.gpus_per_instance <= have:
        # The instances are what does not fit, not the parallelism: name the config.pbtxt field.
        raise InputError(model.folder / CONFIG_FILE, "instance_group.count", message)
    field = "tensor_parallel_size" if tp > 1 or pp == 1 else "pipeline_parallel_size"
    raise InputError(model.engine_file, field, message)


def validate(
    models: list[Model], spec: EngineArgSpec, facts: HostFacts | None, facts_source: str = ""
) -> None:
    for model in models:
        validate_config(model)
        for version in model.served:
            validate_engine_args(model, spec, version)
        if facts is not None:
            check_fits_host(model, facts, facts_source)
