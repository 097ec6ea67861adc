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
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tritonfleet.errors import InputError

# Of a file's name in the temporary names beside it: a 255-byte name must leave room for their suffixes.
NAME_KEPT = 100


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


# --- JSON files operators write (model.json) or copy (hf-config.json) ------------------------------

# The longest number such a file may write: more digits than any count tritonfleet accepts could need.
MAX_JSON_DIGITS = 40


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A key given twice is an error, not the last one silently kept.
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"key {json.dumps(key)} appears twice (JSON keeps only the last)")
        seen.add(key)
    return dict(pairs)


class _BadNumber:
    """What a JSON number tritonfleet refuses parses to, until its place in the file is found."""

    def __init__(self, text: str, why: str) -> None:
        self.message = f"{text if len(text) <= 20 else text[:17] + '...'} {why}"


def _parse_int(text: str) -> int | _BadNumber:
    digits = len(text.lstrip("-"))
    return int(text) if digits <= MAX_JSON_DIGITS else _BadNumber(text, f"has {digits} digits")


def _parse_float(text: str) -> float | _BadNumber:
    value = float(text)
    return value if math.isfinite(value) else _BadNumber(text, "is too large a number")


def _parse_constant(text: str) -> _BadNumber:
    return _BadNumber(text, "is not a JSON number")  # NaN, Infinity, -Infinity


def _key(part: int | str) -> str:
    text = str(part)
    plain = text and "." not in text and text.isprintable() and not any(c.isspace() for c in text)
    return text if plain else json.dumps(text)


def dotted(path: Sequence[int | str]) -> str | None:
    """A key's place in the file for an error: `text_config.rope_scaling.factor`, `layer_types.3`; a key
    that is empty or holds dots, spaces or control characters is quoted, so the error stays one line."""
    return ".".join(_key(part) for part in path) or None


def _bad_values(data: object) -> Iterator[tuple[str | None, str]]:
    """Every refused number or lone surrogate in parsed JSON, in file order, with its dotted key."""
    stack: list[tuple[tuple[int | str, ...], object]] = [((), data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, _BadNumber):
            yield dotted(where), value.message
        elif isinstance(value, str) and not _encodable(value):
            yield dotted(where), "holds a \\u escape that is not a character (a lone surrogate)"
        elif isinstance(value, dict):
            for key in value:
                if not _encodable(key):
                    yield dotted(where), "has a key with a \\u escape that is not a character"
            stack.extend(((*where, k), v) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*where, i), v) for i, v in reversed(list(enumerate(value))))


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def load_json_object(text: str, source: Path | str) -> dict[str, Any]:
    """A JSON object by JSON's own rules, not Python's: NaN and Infinity are not numbers, a number too
    large for a float or with more than MAX_JSON_DIGITS digits is refused where it stands, and so are
    a key given twice and a \\u escape that is no character. InputError naming the place otherwise."""
    try:
        data = json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as exc:
        raise InputError(source, f"line {exc.lineno}:{exc.colno}", f"malformed JSON: {exc.msg}") from exc
    except ValueError as exc:
        raise InputError(source, None, f"malformed JSON: {exc}") from exc
    except RecursionError as exc:
        raise InputError(source, None, "malformed JSON: nested too deeply") from exc
    if not isinstance(data, dict):
        raise InputError(source, None, f"not a JSON object but {type(data).__name__}")
    bad = next(_bad_values(data), None)
    if bad is not None:
        raise InputError(source, bad[0], bad[1])
    return data


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
        fd, temporary = tempfile.mkstemp(dir=parent, prefix=f".{path.name[:NAME_KEPT]}.", suffix=".tmp")
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
    probe = path.parent
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
        fd, trial = tempfile.mkstemp(dir=probe, prefix=f".{path.name[:NAME_KEPT]}.", suffix=".probe")
    except OSError as exc:
        raise InputError(path, None, f"cannot write {what} in {probe}: {describe_os_error(exc)}") from exc
    os.close(fd)
    with contextlib.suppress(OSError):
        Path(trial).unlink()
