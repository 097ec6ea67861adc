"""A release: what one host runs (compose file, its .env, the rendered model repository), named by
the hash of its content, so that an unchanged input gives the same release and a redeploy does nothing.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tritonfleet.errors import InputError

ID_CHARS = 12


def tree_hash(root: Path) -> str:
    """The first ID_CHARS hex digits of a sha256 over every file's relative path, mode bits and bytes.

    Symlinks are hashed as their target text (a release holds none, but one must not escape the tree)."""
    if not root.is_dir():
        raise InputError(root, None, "release folder not found")
    digest = hashlib.sha256()
    entries = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            entries.append(Path(folder, name))
    for path in entries:
        rel = path.relative_to(root).as_posix()
        digest.update(rel.encode() + b"\0")
        if path.is_symlink():
            digest.update(b"link\0" + str(path.readlink()).encode() + b"\0")
            continue
        digest.update(oct(path.stat().st_mode & 0o777).encode() + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:ID_CHARS]
