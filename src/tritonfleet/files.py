"""Reading and writing operator files, with one wording for every failure.

Every read of an operator's file goes through `read_text`, so a missing file, a directory, a dangling
symlink, a symlink loop, a permission problem or bytes that are not UTF-8 all end in one InputError line
that names the file. Every write goes through `write_atomic`: readers (CI, Ansible) never see half a
file, a failed write (read-only or full file system) leaves nothing behind, and the file gets the
permissions the umask gives, as any other tool's output would.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tritonfleet.errors import InputError


def describe_os_error(exc: OSError) -> str:
    """A short reason for an OSError, without Python's `[Errno N]` prefix or the repeated path."""
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    return exc.strerror or str(exc) or type(exc).__name__


# No operator file tritonfleet reads comes near this (nvidia-smi -q -x of 8 GPUs is 1 MiB); a larger
# one is a mistake, such as /dev/zero, and must not be read into memory.
MAX_READ_BYTES = 64 << 20


def read_text(
    path: Path | str, what: str = "file", max_bytes: int = MAX_READ_BYTES, *, regular: bool = False
) -> str:
    """The text of an operator's file; InputError naming it when it cannot be read as UTF-8.

    `regular`: the file must be a regular file (a model repository's files, which Triton reads too); a
    FIFO there would block the read for ever. Otherwise a pipe such as /dev/stdin is read to its end.
    """
    path = Path(path)
    if regular and path.exists() and not path.is_file() and not path.is_dir():
        raise InputError(path, None, f"{what} is not a regular file (a device, pipe or socket)")
    try:
        with path.open("rb") as stream:
            data = stream.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise InputError(
                path, None, f"{what} is larger than {max_bytes >> 20} MiB; is it the right file?"
            )
        return data.decode("utf-8-sig")
    except FileNotFoundError as exc:
        dangling = path.is_symlink()
        raise InputError(
            path, None, f"{what} not found" + (" (dangling symlink)" if dangling else "")
        ) from exc
    except IsADirectoryError as exc:
        raise InputError(path, None, f"{what} expected, found a directory") from exc
    except UnicodeDecodeError as exc:
        raise InputError(path, None, f"{what} is not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise InputError(path, None, f"cannot read {what}: {describe_os_error(exc)}") from exc


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A json.loads object_pairs_hook: a key given twice is an error, not the last one silently kept."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"key {json.dumps(key)} appears twice (JSON keeps only the last)")
        seen.add(key)
    return dict(pairs)


def _umask() -> int:
    # os.umask can only be read by setting it; set it back at once (tritonfleet is single-threaded here).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path | str, text: str, what: str = "file") -> None:
    """Writes PATH in one rename; on any failure PATH is untouched and no temporary file is left."""
    path = Path(path)
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise InputError(path, None, f"cannot write {what}: {parent} is not a directory")
    if path.is_dir():
        raise InputError(path, None, f"cannot write {what}: it is a directory")
    if path.exists() and not path.is_file():
        # A device or a pipe (/dev/null, /dev/stdout, a FIFO): write into it. A rename would replace
        # the device node itself with a regular file.
        try:
            with path.open("w", encoding="utf-8") as out:
                out.write(text)
        except OSError as exc:
            raise InputError(path, None, f"cannot write {what}: {describe_os_error(exc)}") from exc
        return
    temporary: str | None = None
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        Path(temporary).chmod(0o666 & ~_umask())
        Path(temporary).replace(path)
        temporary = None
    except OSError as exc:
        raise InputError(path, None, f"cannot write {what}: {describe_os_error(exc)}") from exc
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                Path(temporary).unlink()


def check_writable_destination(path: Path | str, what: str = "file") -> None:
    """Fails early, before any long work, when PATH could not be written later."""
    path = Path(path)
    if path.is_dir():
        raise InputError(path, None, f"cannot write {what}: it is a directory")
    parent = path.parent
    probe = parent
    while not probe.exists():
        if probe.is_symlink():
            raise InputError(path, None, f"cannot write {what}: {probe} is a dangling symlink")
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(path, None, f"cannot write {what}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(path, None, f"cannot write {what}: {probe} is not writable")
    # Create and remove a file there too: os.access says yes to root for /proc, /sys or a read-only mount,
    # where the real write, after minutes of work, would fail.
    try:
        fd, trial = tempfile.mkstemp(dir=probe, prefix=f".{path.name}.", suffix=".probe")
    except OSError as exc:
        raise InputError(path, None, f"cannot write {what} in {probe}: {describe_os_error(exc)}") from exc
    os.close(fd)
    with contextlib.suppress(OSError):
        Path(trial).unlink()
