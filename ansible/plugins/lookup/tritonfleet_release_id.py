"""`lookup('tritonfleet_release_id', '/path/to/staged/release')`: the release's content hash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
name: tritonfleet_release_id
short_description: the content hash that names a staged release folder
options:
  _terms: {description: staged release folders on the control node, required: true}
"""


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
        from tritonfleet.errors import InputError
        from tritonfleet.rollout.release import tree_hash

        try:
            return [tree_hash(Path(str(term))) for term in terms]
        except InputError as exc:
            raise AnsibleLookupError(str(exc)) from exc
