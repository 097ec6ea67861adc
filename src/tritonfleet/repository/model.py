"""Triton model repositories for the vllm backend: load a repository's models, checked as they load.

A model folder is `config.pbtxt` (parsed with Triton's own protobuf schema, from tritonclient) plus
`<version>/model.json`, whose keys the backend passes verbatim to vLLM's AsyncEngineArgs. Every version
Triton would serve (its version_policy) is loaded, and each model.json's typed keys are checked here
(schema.py), so the validator, the planner and the renderer only ever see well-typed values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tritonfleet.errors import InputError
from tritonfleet.files import load_json_object, read_text
from tritonfleet.repository import protobuf
from tritonfleet.repository.schema import EngineJson, parse
from tritonfleet.serving.contract import ENGINE_FILE

CONFIG_FILE = "config.pbtxt"
# Triton names version folders by a decimal number; ASCII digits only (`²` and `٣` are not versions).
_VERSION = re.compile(r"[0-9]+")
MAX_CONFIG_BYTES = 1 << 20
MAX_VERSION = (1 << 63) - 1  # Triton holds versions as int64


@dataclass(frozen=True)
class Version:
    name: str  # the folder, e.g. "1"
    engine_args: dict[str, Any]
    settings: EngineJson


@dataclass(frozen=True)
class Model:
    name: str
    folder: Path
    config: Any  # model_config_pb2.ModelConfig
    served: tuple[Version, ...]  # every version Triton serves under the config's version_policy
    all_versions: tuple[str, ...] = field(default=())  # every version folder, served or not

    @property
    def latest(self) -> Version:
        return self.served[-1]

    @property
    def version(self) -> str:
        """The highest version served (the one a single-version policy serves)."""
        return self.latest.name

    @property
    def versions(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.served)

    @property
    def engine_args(self) -> dict[str, Any]:
        return self.latest.engine_args

    @property
    def settings(self) -> EngineJson:
        return self.latest.settings

    @property
    def engine_file(self) -> Path:
        return self.folder / self.version / ENGINE_FILE

    @property
    def tensor_parallel_size(self) -> int:
        return self.settings.tensor_parallel_size

    @property
    def pipeline_parallel_size(self) -> int:
        return self.settings.pipeline_parallel_size

    @property
    def gpus_per_instance(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size

    @property
    def instances(self) -> int:
        return sum(max(group.count, 1) for group in self.config.instance_group) or 1


# --- parsing -----------------------------------------------------------------------------------


def parse_config(text: str, source: Path) -> Any:
    """config.pbtxt as Triton's ModelConfig; InputError with the line and column of a syntax error."""
    if not text.strip():
        raise InputError(source, None, "empty model configuration")
    if len(text) > MAX_CONFIG_BYTES:
        raise InputError(source, None, f"{len(text)} bytes; a model configuration is a few kilobytes")
    return protobuf.parse_model_config(text, str(source))


def parse_engine_args(text: str, source: Path) -> dict[str, Any]:
    """model.json as a dict, by JSON's own rules (files.load_json_object): vLLM's arguments are finite."""
    return load_json_object(text, source)


def _version_folders(folder: Path) -> list[Path]:
    found = []
    for child in folder.iterdir():
        if child.name.startswith(".") or not child.is_dir():
            continue
        if not _VERSION.fullmatch(child.name):
            why = "not a version folder: Triton names them by ASCII digits (1, 2, ...)"
            raise InputError(child, None, why)
        if child.name.startswith("0"):
            why = "Triton ignores version folders whose name starts with 0: name it 1, 2, ..."
            raise InputError(child, None, why)
        if int(child.name) > MAX_VERSION:
            raise InputError(child, None, f"beyond Triton's largest version number {MAX_VERSION}")
        found.append(child)
    return sorted(found, key=lambda p: int(p.name))


def _served(config: Any, versions: list[Path], source: Path) -> list[Path]:
    """The version folders Triton loads under the config's version_policy (default: latest 1)."""
    policy = config.version_policy
    choice = policy.WhichOneof("policy_choice")
    if choice == "all":
        return versions
    if choice == "specific":
        wanted = list(policy.specific.versions)
        if not wanted:
            raise InputError(source, "version_policy.specific.versions", "empty: name at least one version")
        by_number = {int(p.name): p for p in versions}
        missing = [v for v in wanted if v not in by_number]
        if missing:
            raise InputError(source, "version_policy.specific.versions", f"no version folder {missing[0]}")
        return [by_number[v] for v in sorted(set(wanted))]
    count = policy.latest.num_versions if choice == "latest" else 1
    if count < 1:
        raise InputError(source, "version_policy.latest.num_versions", f"{count}; must be at least 1")
    return versions[-count:]


def load_model(folder: Path) -> Model:
    config_file = folder / CONFIG_FILE
    config = parse_config(read_text(config_file, "model configuration", regular=True), config_file)
    try:
        versions = _version_folders(folder)
    except OSError as exc:
        raise InputError(folder, None, f"cannot list the model folder: {exc.strerror or exc}") from exc
    if not versions:
        raise InputError(folder, "1/", f"missing version folder: expected {folder.name}/1/{ENGINE_FILE}")
    for version in versions:
        engine_file = version / ENGINE_FILE
        if engine_file.exists() and not engine_file.is_file():
            read_text(engine_file, "engine arguments", regular=True)  # says what it is instead
        if not engine_file.is_file():
            raise InputError(engine_file, None, "missing: every version folder needs a model.json")
    served = []
    for version in _served(config, versions, config_file):
        engine_file = version / ENGINE_FILE
        engine_args = parse_engine_args(read_text(engine_file, "engine arguments", regular=True), engine_file)
        served.append(Version(version.name, engine_args, parse(engine_args, str(engine_file))))
    return Model(folder.name, folder, config, tuple(served), tuple(v.name for v in versions))


def load_repository(root: Path, only: Iterable[str] = ()) -> list[Model]:
    if not root.is_dir():
        why = "is a file, not a directory" if root.exists() else "not found"
        raise InputError(root, None, f"model repository {why}")
    try:
        folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        raise InputError(root, None, f"cannot list the model repository: {exc.strerror or exc}") from exc
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
