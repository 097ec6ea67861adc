"""Which models each host serves, from the inventory's placement and the model repository.

The inventory says, once, which groups serve which models:

    tritonfleet_model_placement:
      gpu_fleet: [llama-3.1-8b-instruct]
      big_gpus: [llama-3.3-70b-instruct]

A host serves the union over the groups it is in (children count). Every group named must exist and
every model must be a model of the repository, so that a typo fails here, before a host is touched,
instead of as a host that serves nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tritonfleet.errors import InputError
from tritonfleet.serving.targets import parse_model_names

PLACEMENT_VAR = "tritonfleet_model_placement"
EXPECT_GPU_VAR = "tritonfleet_expect_gpu"
# Variables every targeted host must have, with the type each must be.
REQUIRED: dict[str, type] = {PLACEMENT_VAR: Mapping, EXPECT_GPU_VAR: bool}
# Ansible's own groups, which a placement may name as well.
BUILTIN_GROUPS = ("all", "ungrouped")


@dataclass(frozen=True)
class HostPlan:
    name: str
    models: tuple[str, ...]
    expect_gpu: bool


def _type_name(kind: type) -> str:
    return {Mapping: "a mapping of group to models", bool: "true or false"}[kind]


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _check_required(host: str, variables: Mapping[str, Any], source: str) -> None:
    for var, kind in REQUIRED.items():
        if var not in variables:
            raise InputError(source, f"{host}: {var}", "is not set (put it in group_vars/all or the host)")
        # Ansible hands over its own Mapping subclasses; YAML's `yes` is already a bool, and 1 is no bool.
        if not isinstance(variables[var], kind):
            raise InputError(
                source, f"{host}: {var}", f"{_describe(variables[var])} is not {_type_name(kind)}"
            )


def _placement(value: Mapping[Any, Any], host: str, source: str) -> dict[str, tuple[str, ...]]:
    placed: dict[str, tuple[str, ...]] = {}
    for group, models in value.items():
        field = f"{host}: {PLACEMENT_VAR}.{group}"
        if not isinstance(group, str) or not group:
            raise InputError(source, f"{host}: {PLACEMENT_VAR}", f"{_describe(group)} is not a group name")
        placed[group] = parse_model_names(models, source, field)
    return placed


def plan_hosts(
    hosts: Sequence[str],
    hostvars: Mapping[str, Mapping[str, Any]],
    host_groups: Mapping[str, Iterable[str]],
    known_groups: Iterable[str],
    repository_models: Iterable[str],
    source: str,
) -> list[HostPlan]:
    """Each targeted host's models, or the first problem as an InputError naming the variable.

    `host_groups` maps a host to every group it is in (Ansible's `group_names`, children resolved);
    `known_groups` are the inventory's groups; `repository_models` the models of the repository.
    """
    if not hosts:
        raise InputError(source, None, "no host to deploy to")
    known = set(known_groups) | set(BUILTIN_GROUPS)
    available = set(repository_models)
    plans: list[HostPlan] = []
    for host in sorted(hosts):  # the first problem by host name, whatever order the inventory has
        variables = hostvars.get(host, {})
        _check_required(host, variables, source)
        placement = _placement(variables[PLACEMENT_VAR], host, source)
        if not placement:
            raise InputError(source, f"{host}: {PLACEMENT_VAR}", "is empty: place at least one model")
        for group, models in placement.items():
            field = f"{host}: {PLACEMENT_VAR}.{group}"
            if group not in known:
                shown = ", ".join(sorted(known - set(BUILTIN_GROUPS))) or "none"
                raise InputError(source, field, f"no such host group in the inventory (groups: {shown})")
            missing = [m for m in models if m not in available]
            if missing:
                shown = ", ".join(sorted(available)) or "none"
                raise InputError(
                    source, field, f"model {missing[0]} is not in the model repository (models: {shown})"
                )
        member_of = set(host_groups.get(host, ())) | {"all"}
        models: list[str] = []
        for group, placed in placement.items():
            if group in member_of:
                models.extend(m for m in placed if m not in models)
        if not models:
            groups = ", ".join(sorted(member_of - {"all"})) or "none"
            raise InputError(
                source, f"{host}: {PLACEMENT_VAR}", f"places no model on this host (its groups: {groups})"
            )
        plans.append(HostPlan(host, tuple(models), variables[EXPECT_GPU_VAR]))
    return plans
