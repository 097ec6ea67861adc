#!/usr/bin/python
"""Module `tritonfleet_serving_state`: what a host's Triton service holds, read in one round trip.

The triton_service role decides from this what to copy, link, create and prune. A stat or find per
question costs a module run each (about 0.3 s over a host connection, five of them a host and deploy);
this module answers all of them at once and changes nothing.
"""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: tritonfleet_serving_state
short_description: read a host's releases, links, weights and memlock limit in one call
description:
  - Reads only; safe in check mode.
options:
  root: {description: the releases' root (triton_service_root), type: path, required: true}
  weights_dir: {description: the host's local weights cache, type: path, required: true}
  hf_cache: {description: the host's Hugging Face cache, type: path, required: true}
  memlock_script:
    description: a bash script that prints the memlock limit a container can get (scripts/memlock)
    type: str
    required: true
"""

RETURN = r"""
memlock: {description: what memlock_script printed, type: str}
current: {description: the release the current link names, or empty, type: str}
previous: {description: the release the previous link names, or empty, type: str}
releases:
  description: the releases held, oldest first, with whether each is whole and the models it serves
  type: list
  elements: dict
weights:
  description: each local weights folder and the content markers (.tritonfleet-ID) in it
  type: dict
caches_ready:
  description: both caches exist as folders owned by root with mode 0755, as the role creates them
  type: bool
"""

MARKER = ".tritonfleet-"


def link_name(path: Path) -> str:
    """The release a link names: the last part of its target; empty when it is not a link."""
    return path.readlink().name if path.is_symlink() else ""


def subfolders(path: Path) -> list[Path]:
    try:
        return [entry for entry in path.iterdir() if entry.is_dir() and not entry.is_symlink()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def releases(root: Path) -> list[dict[str, Any]]:
    held = [
        {
            "name": folder.name,
            "mtime": folder.lstat().st_mtime,
            "complete": (folder / ".complete").is_file(),
            "models": sorted(model.name for model in subfolders(folder / "model_repository")),
        }
        for folder in subfolders(root / "releases")
    ]
    return sorted(held, key=lambda release: (release["mtime"], release["name"]))


def weights(weights_dir: Path) -> dict[str, list[str]]:
    return {
        folder.name: sorted(n.name[len(MARKER) :] for n in folder.iterdir() if n.name.startswith(MARKER))
        for folder in subfolders(weights_dir)
    }


def cache_ready(path: Path) -> bool:
    try:
        info = path.lstat()
    except OSError:
        return False
    mode = info.st_mode
    return stat.S_ISDIR(mode) and stat.S_IMODE(mode) == 0o755 and info.st_uid == info.st_gid == 0


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "weights_dir": {"type": "path", "required": True},
            "hf_cache": {"type": "path", "required": True},
            "memlock_script": {"type": "str", "required": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    root = Path(p["root"])
    probe = subprocess.run(
        ["bash", "-c", p["memlock_script"], "memlock"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        module.fail_json(msg=f"the memlock probe failed (exit {probe.returncode}): {probe.stderr.strip()}")
    module.exit_json(
        changed=False,
        memlock=probe.stdout.strip(),
        current=link_name(root / "current"),
        previous=link_name(root / "previous"),
        releases=releases(root),
        weights=weights(Path(p["weights_dir"])),
        caches_ready=cache_ready(Path(p["weights_dir"])) and cache_ready(Path(p["hf_cache"])),
    )


if __name__ == "__main__":
    main()
