"""The vLLM engine's shared-memory queues, given their memory while the engine starts.

vLLM passes work between its engine and worker processes through ring buffers in /dev/shm files
that it creates sparse. A tmpfs fills (the Python backend's own tensors live there too, and grow with
big responses such as many logprobs), and the first write to a page not yet backed is a SIGBUS that
kills the engine without a word. Backing every page at load time turns that into a clear load error
when /dev/shm is too small, and into nothing at all later.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

SHM_DIR = Path("/dev/shm")
# multiprocessing.shared_memory's prefix, which vLLM's shared-memory queues use.
SEGMENT_PREFIX = "psm_"


def segments(directory: Path = SHM_DIR) -> set[str]:
    """The shared-memory segments this process's user owns."""
    uid = os.getuid()
    try:
        entries = list(directory.iterdir())
    except OSError:
        return set()
    found = set()
    for entry in entries:
        try:
            if entry.name.startswith(SEGMENT_PREFIX) and entry.stat().st_uid == uid:
                found.add(entry.name)
        except OSError:  # removed meanwhile
            continue
    return found


class ShmTooSmallError(OSError):
    pass


def back(names: set[str], directory: Path = SHM_DIR) -> int:
    """Allocate every page of the named segments; the bytes now backed. ShmTooSmallError when the
    file system cannot hold them."""
    total = 0
    for name in sorted(names):
        try:
            fd = os.open(directory / name, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            size = os.fstat(fd).st_size
            os.posix_fallocate(fd, 0, size)
            total += size
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise ShmTooSmallError(
                    exc.errno,
                    f"{directory} has no room for the vLLM engine's shared-memory queues "
                    f"({size / 2**20:.0f} MiB for {name}): raise the container's shm_size",
                ) from exc
            raise
        finally:
            os.close(fd)
    return total
