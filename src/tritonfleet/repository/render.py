"""Writes the per-host copy of a model repository, all at once or not at all.

The copy is built in a sibling folder and renamed into place, so readers never see half of it. DEST is
replaced only when it is empty or a repository tritonfleet rendered (it holds MARKER): a DEST typed
wrong (the source's parent, the home directory, `.`) must never be emptied.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from tritonfleet.errors import InputError
from tritonfleet.files import NAME_KEPT, describe_os_error
from tritonfleet.repository.model import Model, Version
from tritonfleet.serving.contract import ENGINE_FILE

# Written into every rendered repository. Triton ignores dot-files in a model repository.
MARKER = ".tritonfleet-rendered"


def _protected() -> dict[Path, str]:
    places = {Path("/"): "the root directory", Path.cwd().resolve(): "the working directory"}
    with contextlib.suppress(RuntimeError, KeyError):
        places.setdefault(Path.home().resolve(), "the home directory")
    return places


def check_destination(src: Path, dest: Path, force: bool) -> None:
    """InputError unless DEST can be written, or replaced with --force, without losing anything else."""
    if dest.is_symlink():
        raise InputError(dest, None, "is a symlink; give the directory it points to")
    parent = dest.parent
    if not parent.exists():
        raise InputError(dest, None, f"parent directory {parent} does not exist")
    if not parent.is_dir():
        raise InputError(dest, None, f"{parent} is a file, not a directory")
    resolved_src, resolved_dest = src.resolve(), dest.resolve()
    if resolved_dest == resolved_src or resolved_src in resolved_dest.parents:
        raise InputError(dest, None, f"must not be inside the source repository {src}")
    what = _protected().get(resolved_dest)
    if what:
        raise InputError(dest, None, f"is {what}; render into a folder of its own")
    if resolved_dest in resolved_src.parents:
        raise InputError(dest, None, f"holds the source repository {src}; render to a sibling folder")
    if not dest.exists():
        return
    if not dest.is_dir():
        raise InputError(dest, None, "exists and is not a directory")
    if not force:
        raise InputError(dest, None, "already exists; pass --force to replace it")
    try:
        entries = [p.name for p in dest.iterdir()]
    except OSError as exc:
        raise InputError(dest, None, f"cannot list: {describe_os_error(exc)}") from exc
    if entries and MARKER not in entries:
        shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
        raise InputError(
            dest, None, f"holds files tritonfleet did not render ({shown}); --force replaces only its own"
        )


def _write_engine_file(folder: Path, version: Version, override: dict[str, Any]) -> None:
    engine_args = {**version.engine_args, **override}
    (folder / version.name / ENGINE_FILE).write_text(
        json.dumps(engine_args, indent=2) + "\n", encoding="utf-8"
    )


def write_repository(
    models: list[Model],
    src: Path,
    dest: Path,
    force: bool,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> list[Model]:
    """Writes the models to a sibling temporary folder, then swaps it into place in one rename.

    `overrides` sets engine arguments per model, in every version it serves (the planner's utilization).
    Returns the models as written. Any failure leaves DEST as it was and no temporary folder behind.
    """
    check_destination(src, dest, force)
    overrides = overrides or {}
    staging: Path | None = None
    retired: Path | None = None
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name[:NAME_KEPT]}.new-", dir=dest.parent))
        # mkdtemp makes 0700; tritonserver in a container runs as another user and must read the copy.
        staging.chmod(0o755)
        for model in models:
            shutil.copytree(model.folder, staging / model.name, symlinks=False)
            if overrides.get(model.name):
                for version in model.served:
                    _write_engine_file(staging / model.name, version, overrides[model.name])
        (staging / MARKER).write_text(f"rendered by tritonfleet from {src.resolve()}\n", encoding="utf-8")
        if dest.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{dest.name[:NAME_KEPT]}.old-", dir=dest.parent))
            dest.replace(retired / dest.name)
        staging.replace(dest)
        staging = None
    except (OSError, shutil.Error) as exc:
        if retired is not None and not dest.exists():
            with contextlib.suppress(OSError):
                (retired / dest.name).replace(dest)  # put the previous repository back
        kept = "" if dest.exists() or retired is None else f"; the previous one is in {retired / dest.name}"
        raise InputError(dest, None, f"cannot write the repository: {_reason(exc)}{kept}") from exc
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        # Keep the previous repository if it could not be put back: never delete the only copy.
        if retired is not None and (dest.exists() or not (retired / dest.name).exists()):
            shutil.rmtree(retired, ignore_errors=True)
    return [_applied(model, overrides.get(model.name, {})) for model in models]


def _reason(exc: OSError | shutil.Error) -> str:
    if isinstance(exc, shutil.Error):
        errors = exc.args[0] if exc.args and isinstance(exc.args[0], list) else []
        first = errors[0] if errors else None
        text = f"{first[0]}: {first[2]}" if first and len(first) == 3 else str(exc)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return text[:300] + more
    where = f"{exc.filename}: " if exc.filename else ""
    return where + describe_os_error(exc)


def _applied(model: Model, override: dict[str, Any]) -> Model:
    if not override:
        return model
    served = tuple(
        replace(v, engine_args={**v.engine_args, **override}, settings=v.settings.model_copy(update=override))
        for v in model.served
    )
    return replace(model, served=served)
