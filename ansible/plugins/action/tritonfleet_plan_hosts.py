"""Action `tritonfleet_plan_hosts`: which models each targeted host serves, checked before any change.

Runs on the control node only. It reads the targeted hosts' variables and groups from Ansible, the
model names from the model repository, and hands them to tritonfleet.rollout.placement, which owns
every rule; a problem comes back as the task's one-line failure message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase

DOCUMENTATION = r"""
module: tritonfleet_plan_hosts
short_description: check the inventory and return each host's models
options:
  hosts: {description: the targeted hosts (ansible_play_hosts_all), type: list, required: true}
  repository: {description: the model repository on the control node, type: path, required: true}
  source: {description: what error lines name as the inventory, type: str, required: true}
"""


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        from tritonfleet.errors import InputError
        from tritonfleet.repository.model import load_repository
        from tritonfleet.rollout.placement import REQUIRED, plan_hosts

        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        hosts = [str(h) for h in args["hosts"]]
        hostvars = task_vars["hostvars"]
        groups = task_vars["groups"]
        source = str(args["source"])
        try:
            models = [m.name for m in load_repository(Path(args["repository"]))]
            # Only the variables the rules read: hostvars templates every value it is asked for.
            wanted = {h: {v: hostvars[h][v] for v in REQUIRED if v in hostvars[h]} for h in hosts}
            member_of = {h: list(hostvars[h]["group_names"]) for h in hosts}
            plans = plan_hosts(hosts, wanted, member_of, groups.keys(), models, source)
        except InputError as exc:
            return {**result, "failed": True, "msg": exc.line()}
        result["changed"] = False
        result["hosts"] = {p.name: {"models": list(p.models), "expect_gpu": p.expect_gpu} for p in plans}
        return result
