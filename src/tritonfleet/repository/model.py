"""Triton model repositories for the vllm backend: load, validate, and render a per-host copy.

A model folder is `config.pbtxt` (parsed with Triton's own protobuf schema, from tritonclient) plus
`<version>/model.json`, whose keys the backend passes verbatim to vLLM's AsyncEngineArgs.
Validation happens in full before anything is written, so bad input never leaves a partial repository.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from tritonfleet.errors import InputError
from tritonfleet.pins.engine_args import EngineArgSpec
from tritonfleet.serving.contract import (
    BACKEND,
    ENGINE_FILE,
    INPUTS,
    METRICS_PARAMETER,
    OUTPUTS,
    REQUIRED_INPUTS,
    REQUIRED_OUTPUTS,
)
from tritonfleet.sizing import planner as plan

if TYPE_CHECKING:
    from tritonfleet.host.gpus import HostFacts

CONFIG_FILE = "config.pbtxt"


@dataclass(frozen=True)
class Model:
    name: str
    folder: Path
    config: mc.ModelConfig
    version: str  # the version folder Triton serves (the highest number, Triton's default policy)
    engine_args: dict[str, Any]

    @property
    def engine_file(self) -> Path:
        return self.folder / self.version / ENGINE_FILE

    @property
    def tensor_parallel_size(self) -> int:
        return int(self.engine_args.get("tensor_parallel_size", 1))

    @property
    def pipeline_parallel_size(self) -> int:
        return int(self.engine_args.get("pipeline_parallel_size", 1))

    @property
    def gpus_per_instance(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size

    @property
    def instances(self) -> int:
        return sum(max(group.count, 1) for group in self.config.instance_group) or 1


# --- parsing -----------------------------------------------------------------------------------


def parse_config(text: str, source: Path) -> mc.ModelConfig:
    if not text.strip():
        raise InputError(source, None, "empty model configuration")
    try:
        return text_format.Parse(text, mc.ModelConfig())
    except text_format.ParseError as exc:
        # The message starts with "line:col : "; we move that position into the field slot.
        message = str(exc).split(" : ", 1)[-1]
        raise InputError(source, f"line {exc.GetLine()}:{exc.GetColumn()}", message) from exc


def parse_engine_args(text: str, source: Path) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(source, f"line {exc.lineno}:{exc.colno}", f"malformed JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise InputError(source, None, f"must be a JSON object, got {type(data).__name__}")
    return data


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(path, None, "file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"cannot read: {exc}") from exc


def load_model(folder: Path) -> Model:
    config = parse_config(_read(folder / CONFIG_FILE), folder / CONFIG_FILE)
    versions = sorted(
        (p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)
    )
    if not versions:
        raise InputError(folder, "1/", f"missing version folder: expected {folder.name}/1/{ENGINE_FILE}")
    for version in versions:
        if not (version / ENGINE_FILE).is_file():
            raise InputError(version / ENGINE_FILE, None, "missing: every version folder needs a model.json")
    served = versions[-1]
    engine_args = parse_engine_args(_read(served / ENGINE_FILE), served / ENGINE_FILE)
    return Model(folder.name, folder, config, served.name, engine_args)


def load_repository(root: Path, only: Iterable[str] = ()) -> list[Model]:
    if not root.is_dir():
        raise InputError(root, None, "model repository not found (not a directory)")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    wanted = list(only)
    if wanted:
        known = {p.name for p in folders}
        for name in wanted:
            if name not in known:
                raise InputError(root, name, f"no such model; the repository has: {', '.join(sorted(known))}")
        folders = [p for p in folders if p.name in wanted]
    if not folders:
        raise InputError(root, None, "model repository holds no model folders")
    return [load_model(folder) for folder in folders]


# --- validation --------------------------------------------------------------------------------


def _check_tensors(model: Model, kind: str, tensors: Iterable[mc.ModelInput | mc.ModelOutput]) -> None:
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
        data_type = mc.DataType.Name(tensor.data_type)
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
        kind = mc.ModelInstanceGroup.Kind.Name(group.kind)
        if model.gpus_per_instance > 1 and kind != "KIND_MODEL":
            raise InputError(
                source,
                f"instance_group[{index}].kind",
                f"is {kind}; tensor/pipeline parallel ({model.gpus_per_instance} GPUs) needs KIND_MODEL",
            )
    _check_tensors(model, "input", config.input)
    _check_tensors(model, "output", config.output)


# vLLM's annotations for scalar engine arguments, mapped to the JSON values that satisfy them.
_SCALAR_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "str": (str,),
}


def _accepts(annotation: str, value: Any) -> bool | None:
    """Whether a JSON value fits a simple annotation such as `int | None`; None when we cannot tell."""
    allowed: list[type] = []
    for part in (p.strip() for p in annotation.split("|")):
        if part == "None":
            allowed.append(type(None))
        elif part in _SCALAR_TYPES:
            allowed.extend(_SCALAR_TYPES[part])
        else:
            return None  # literals, lists, dicts, configs: vLLM itself checks those
    if isinstance(value, bool) and bool not in allowed:
        return False  # JSON true is not a number, although Python's bool is an int
    return isinstance(value, tuple(allowed))


def validate_engine_args(model: Model, spec: EngineArgSpec) -> None:
    source = model.engine_file
    engine = f"{spec.distribution} {spec.version}"
    for key, value in model.engine_args.items():
        if key not in spec.arguments:
            hint = spec.suggest(key)
            tail = f"; did you mean {hint!r}?" if hint else ""
            raise InputError(source, key, f"unknown engine argument for {engine}{tail}")
        fits = _accepts(spec.arguments[key], value)
        if fits is False:
            raise InputError(
                source, key, f"{json.dumps(value)} does not fit {engine}'s type {spec.arguments[key]}"
            )
    model_id = model.engine_args.get("model")
    if not isinstance(model_id, str) or not model_id.strip():
        raise InputError(source, "model", "missing: a Hugging Face id or a path to the weights")
    for key in ("tensor_parallel_size", "pipeline_parallel_size"):
        if model.engine_args.get(key, 1) < 1:
            raise InputError(source, key, "must be at least 1")
    utilization = model.engine_args.get("gpu_memory_utilization")
    if utilization is not None and not 0 < utilization <= 1:
        raise InputError(source, "gpu_memory_utilization", f"is {utilization}; must be in (0, 1]")


def check_fits_host(model: Model, facts: HostFacts, facts_source: str) -> None:
    needed = model.gpus_per_instance * model.instances
    have = len(facts.gpus)
    if needed > have:
        field = "tensor_parallel_size" if model.tensor_parallel_size > 1 else "pipeline_parallel_size"
        tp, pp = model.tensor_parallel_size, model.pipeline_parallel_size
        shape = f"{model.instances} instance(s) x tp {tp} x pp {pp}"
        raise InputError(
            model.engine_file, field, f"{shape} needs {needed} GPU(s), but {facts_source} has {have}"
        )


def validate(
    models: list[Model], spec: EngineArgSpec, facts: HostFacts | None, facts_source: str = ""
) -> None:
    for model in models:
        validate_config(model)
        validate_engine_args(model, spec)
        if facts is not None:
            check_fits_host(model, facts, facts_source)


# --- rendering ---------------------------------------------------------------------------------


def _check_destination(src: Path, dest: Path, force: bool) -> None:
    if not dest.parent.is_dir():
        raise InputError(dest, None, f"parent directory {dest.parent} does not exist")
    if dest.exists() and not force:
        raise InputError(dest, None, "already exists; pass --force to replace it")
    if dest.exists() and not dest.is_dir():
        raise InputError(dest, None, "exists and is not a directory")
    resolved_src, resolved_dest = src.resolve(), dest.resolve()
    if resolved_dest == resolved_src or resolved_src in resolved_dest.parents:
        raise InputError(dest, None, f"must not be inside the source repository {src}")


def write_repository(
    models: list[Model], dest: Path, force: bool, overrides: dict[str, dict[str, Any]] | None = None
) -> None:
    """Writes the models to a sibling temp folder, then swaps it into place in one rename.

    `overrides` sets engine arguments per model in the written model.json (the planner's utilization).
    """
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.new-", dir=dest.parent))
    # mkdtemp makes 0700; tritonserver in a container runs as another user and must read the repository.
    staging.chmod(0o755)
    retired: Path | None = None
    try:
        for model in models:
            shutil.copytree(model.folder, staging / model.name, symlinks=False)
            if overrides and overrides.get(model.name):
                engine_file = staging / model.name / model.version / ENGINE_FILE
                engine_args = {**model.engine_args, **overrides[model.name]}
                engine_file.write_text(json.dumps(engine_args, indent=2) + "\n", encoding="utf-8")
        if dest.exists() and force:
            retired = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
            dest.replace(retired / dest.name)
        staging.replace(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if retired is not None and not dest.exists():
            (retired / dest.name).replace(dest)  # put the previous repository back
        raise
    finally:
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)


def render(
    src: Path,
    dest: Path,
    spec: EngineArgSpec,
    *,
    facts: HostFacts | None = None,
    facts_source: str = "",
    force: bool = False,
    only: Iterable[str] = (),
) -> list[Model]:
    models = load_repository(src, only)
    validate(models, spec, facts, facts_source)
    _check_destination(src, dest, force)
    overrides: dict[str, dict[str, Any]] = {}
    if facts is not None:
        # The planner sizes every model that brings its hf-config.json (plan.py); the others keep theirs.
        sized, _ = plan.plannable(models)
        if sized:
            totals = [g.memory_usable_bytes for g in facts.gpus]
            requests = plan.requests_for(sized, min(totals), {}, plan.compute_capability(facts))
            planned = plan.plan_host(requests, totals)
            overrides = {p.name: {"gpu_memory_utilization": p.utilization} for p in planned.models}
            models = [replace(m, engine_args={**m.engine_args, **overrides.get(m.name, {})}) for m in models]
    write_repository(models, dest, force, overrides)
    return models
