"""`lookup('tritonfleet_pin', 'host.nvidia.driver_branch')`: a pinned version from images/versions.yaml.

Role defaults read every version through this lookup, so that versions.yaml stays the one place a
version is written. A thin adapter: tritonfleet's own loader validates the file and resolves the key.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
name: tritonfleet_pin
short_description: a pinned version from tritonfleet's images/versions.yaml
description:
  - Returns the value at each dotted key, as C(tritonfleet versions KEY) prints it.
options:
  _terms:
    description: dotted keys, e.g. C(host.nvidia.driver_branch) or C(triton.image_ref).
    required: true
"""


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
        from tritonfleet.errors import InputError
        from tritonfleet.pins import versions

        try:
            pins = versions.load()
            return [pins.lookup(str(term)) for term in terms]
        except InputError as exc:
            raise AnsibleLookupError(str(exc)) from exc
