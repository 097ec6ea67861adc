"""What the backend asks of vLLM: engine arguments from model.json, and sampling values checked.

Every check that can refuse a request runs here, in execute(), before the request reaches the engine:
a value vLLM would refuse later, inside the engine's loop, must be refused while the client still
waits for its one final response.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import msgspec
import vllm
from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.sampling_params import SamplingParams

from tritonfleet.backend.request import RequestError

# The keys a client may set: SamplingParams' public fields, less the ones the backend owns.
SAMPLING_FIELDS = frozenset(
    name
    for name in SamplingParams.__struct_fields__
    if not name.startswith("_") and name not in ("output_kind", "skip_clone")
)
# model.json keys NVIDIA's backend also accepts as the strings "true"/"false".
_BOOL_ENGINE_ARGS = ("enable_lora",)


class EngineArgsError(ValueError):
    """model.json cannot start an engine; the model fails to load with this message."""


def read_json_object(path: Path, what: str = "a JSON object") -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EngineArgsError(f"{path}: {exc}") from exc
    if not isinstance(value, dict):
        raise EngineArgsError(f"{path}: must be {what}")
    return value


def load_engine_args(path: Path) -> dict[str, Any]:
    engine_args = read_json_object(path)
    known = {f.name for f in dataclasses.fields(AsyncEngineArgs)}
    unknown = sorted(set(engine_args) - known)
    if unknown:
        raise EngineArgsError(
            f"{path}: unknown engine argument(s) {', '.join(unknown)} for vLLM {vllm.__version__}"
        )
    for key in _BOOL_ENGINE_ARGS:
        value = engine_args.get(key)
        if isinstance(value, str):
            if value.lower() not in ("true", "false"):
                raise EngineArgsError(f"{path}: {key}: {value!r} is not true or false")
            engine_args[key] = value.lower() == "true"
    return engine_args


def sampling_params(sampling: dict[str, Any]) -> SamplingParams:
    """SamplingParams from the client's values, or RequestError saying which value vLLM refused."""
    unknown = sorted(set(sampling) - SAMPLING_FIELDS)
    if unknown:
        raise RequestError(f"sampling_parameters: unknown key(s) {', '.join(unknown)}")
    try:
        # msgspec checks each value's type (SamplingParams(**values) does not, and a wrong type then
        # fails inside the engine's loop, where no response can be sent), builds structured_outputs,
        # and runs vLLM's own range checks.
        return msgspec.convert(sampling, SamplingParams)
    except Exception as exc:  # msgspec's ValidationError, vLLM's VLLMValidationError, ValueError
        detail = str(exc).strip() or type(exc).__name__
        raise RequestError(f"sampling_parameters: {detail}") from exc
