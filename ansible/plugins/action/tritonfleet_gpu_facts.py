"""Action `tritonfleet_gpu_facts`: a host's NVIDIA devices and GPU facts, read raw, parsed here.

The host only runs commands (a sysfs listing of its PCI bus, then nvidia-smi's three queries, as raw
shell commands: no Python and no parsing on the host). Their text comes back to the control node and
tritonfleet parses it with the same code as `tritonfleet facts`. The result carries:

  pci:   {gpus: [PCI addresses], nvswitches: [...]}   (known before any driver exists)
  host:  `tritonfleet facts --format json` of the host (GPUs empty, with a probe status, where
         nvidia-smi is absent or fails)
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from ansible.plugins.action import ActionBase

DOCUMENTATION = r"""
module: tritonfleet_gpu_facts
short_description: NVIDIA devices (PCI) and nvidia-smi facts of a host, parsed on the control node
options:
  nvidia_smi: {description: also run nvidia-smi (not before a driver exists), type: bool, default: true}
"""


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def _run(self, command: str) -> dict[str, Any]:
        return self._low_level_execute_command(command, sudoable=True)

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        from tritonfleet.errors import InputError
        from tritonfleet.host import gpus, pci

        result = super().run(tmp, task_vars)
        host = (task_vars or {}).get("inventory_hostname", "host")
        scan = self._run(pci.SCAN_COMMAND)
        if scan["rc"] != 0:
            return {**result, "failed": True, "msg": f"{host}: PCI scan failed: {scan['stderr'].strip()}"}
        try:
            devices = pci.parse_scan(scan["stdout"], f"{host}: /sys/bus/pci/devices")
            outputs: dict[str, gpus.ProbeOutput] = {}
            if self._task.args.get("nvidia_smi", True):
                for shown, argv in gpus.PROBE_COMMANDS.items():
                    # Exit 127 with no output is "not found", as facts_from_outputs reads it.
                    done = self._run(f"command -v nvidia-smi >/dev/null || exit 127; {shlex.join(argv)}")
                    outputs[shown] = gpus.ProbeOutput(done["rc"], done["stdout"], done["stderr"])
                    if done["rc"] != 0:
                        break
            facts = gpus.facts_from_outputs(outputs)
        except InputError as exc:
            return {**result, "failed": True, "msg": exc.line()}
        result["changed"] = False
        result["pci"] = {"gpus": list(devices.gpus), "nvswitches": list(devices.nvswitches)}
        result["host"] = json.loads(facts.model_dump_json())
        return result
