"""Action `tritonfleet_check_role_vars`: the role variables an operator set, checked against each role's
meta/argument_specs.yml before the rollout touches a host.

Ansible checks a role's arguments when the role starts, which in a rolling play is after earlier roles
changed the host. This checks the same specs up front. Only what the operator set is checked: a role's
required inputs that site.yml wires from facts are not the inventory's to give, so `required` is lifted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase

DOCUMENTATION = r"""
module: tritonfleet_check_role_vars
short_description: check inventory variables against roles' argument specs
options:
  roles_dir: {description: the folder holding the roles, type: path, required: true}
  roles: {description: role names to check, type: list, required: true}
  source: {description: what error lines name as the inventory, type: str, required: true}
"""


def _lift_required(options: dict[str, Any]) -> dict[str, Any]:
    lifted = {}
    for name, spec in options.items():
        spec = {k: v for k, v in spec.items() if k not in ("required", "description", "default")}
        if "options" in spec:
            spec["options"] = _lift_required(spec["options"])
        lifted[name] = spec
    return lifted


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        import yaml
        from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        host = task_vars["inventory_hostname"]
        source = str(args["source"])
        checked = []
        for role in args["roles"]:
            spec_file = Path(args["roles_dir"]) / role / "meta" / "argument_specs.yml"
            options = yaml.safe_load(spec_file.read_text(encoding="utf-8"))["argument_specs"]["main"][
                "options"
            ]
            prefix = f"{role}_"
            given = {
                name: self._templar.template(task_vars[name]) for name in task_vars if name.startswith(prefix)
            }
            unknown = sorted(set(given) - set(options))
            if unknown:
                known = ", ".join(sorted(options))
                msg = f"{source}: {host}: {unknown[0]}: role {role} has no such variable (it has: {known})"
                return {**result, "failed": True, "msg": msg}
            outcome = ArgumentSpecValidator(_lift_required(options)).validate(given)
            if outcome.error_messages:
                first = " ".join(outcome.error_messages[0].split())
                return {**result, "failed": True, "msg": f"{source}: {host}: role {role}: {first}"}
            checked.append(role)
        return {**result, "changed": False, "checked": checked}
