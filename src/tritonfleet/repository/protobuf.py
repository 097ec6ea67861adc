"""Triton's ModelConfig protobuf (from tritonclient), loaded without the rest of tritonclient.

`tritonclient.grpc`'s package import pulls in grpc and its client stack, a third of a second that a
command such as `render` does not need: only the generated model_config_pb2 module is loaded here.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from types import ModuleType
from typing import Any

from tritonfleet.errors import InputError

_MODULE = "tritonclient.grpc.model_config_pb2"


@cache
def model_config() -> ModuleType:
    """tritonclient's model_config_pb2, imported on its own (or as already imported)."""
    if _MODULE in sys.modules:
        return sys.modules[_MODULE]
    package = importlib.util.find_spec("tritonclient")
    if package is None or not package.submodule_search_locations:
        raise InputError("tritonclient", None, "not installed; tritonfleet needs it to read config.pbtxt")
    location = next(iter(package.submodule_search_locations))
    spec = importlib.util.spec_from_file_location(
        "_tritonfleet_model_config_pb2", f"{location}/grpc/model_config_pb2.py"
    )
    if spec is None or spec.loader is None:
        raise InputError(location, "grpc/model_config_pb2.py", "missing from tritonclient")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_model_config(text: str, source: str) -> Any:
    from google.protobuf import text_format

    mc = model_config()
    try:
        return text_format.Parse(text, mc.ModelConfig())
    except text_format.ParseError as exc:
        # The message starts with "line:col : "; we move that position into the field slot.
        message = str(exc).split(" : ", 1)[-1]
        raise InputError(source, f"line {exc.GetLine()}:{exc.GetColumn()}", message) from exc
    except (ValueError, RecursionError, OverflowError) as exc:
        raise InputError(source, None, f"not a model configuration: {exc}") from exc
