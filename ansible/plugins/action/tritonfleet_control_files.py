"""Action `tritonfleet_control_files`: write and remove the rollout's own files on the control node.

The rollout keeps small files on the control node: each host's staged release, its outcome for the
summary, the image record. `copy` or `file` delegated to localhost start a module process per file and
per check (0.3 to 0.9 s each, measured in a no-op deploy); this action writes them from Ansible's own
process. Each file is written whole by tritonfleet.files.write_atomic (so a reader never sees half of
one) and only when its text changes, which is what `changed` reports. Check mode writes nothing and
reports what would change; --diff shows the text before and after.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase

ACTION = "tritonfleet_control_files"

DOCUMENTATION = r"""
module: tritonfleet_control_files
short_description: write and remove files on the control node, without a module process
options:
  files:
    description: files to write, each {path, content} or {path, src} (src is copied as it is)
    type: list
    elements: dict
    default: []
  directories: {description: folders to create, type: list, elements: path, default: []}
  remove: {description: glob patterns of files to remove, type: list, elements: str, default: []}
"""


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        from tritonfleet.errors import InputError
        from tritonfleet.files import read_text, write_atomic

        result = super().run(tmp, task_vars)
        args = self._task.args
        unknown = sorted(set(args) - {"files", "directories", "remove"})
        if unknown:
            return {**result, "failed": True, "msg": f"{ACTION}: unknown option {unknown[0]}"}
        check = bool(self._play_context.check_mode)
        changed: list[str] = []
        diffs: list[dict[str, str]] = []
        try:
            wanted = [_wanted(entry) for entry in args.get("files") or []]
            for pattern in args.get("remove") or []:
                # A pattern's folders may be globs too (hosts/*/outcome.json): Path.glob takes no root.
                for found in sorted(glob.glob(str(pattern))):  # noqa: PTH207
                    if Path(found).is_file() or Path(found).is_symlink():
                        changed.append(found)
                        if not check:
                            Path(found).unlink(missing_ok=True)
            for folder in args.get("directories") or []:
                if not Path(folder).is_dir():
                    changed.append(str(folder))
                    if not check:
                        Path(folder).mkdir(parents=True, exist_ok=True)
            for path, text in wanted:
                before = read_text(path) if path.is_file() else None
                if before == text:
                    continue
                changed.append(str(path))
                diffs.append({"before_header": str(path), "after_header": str(path)})
                diffs[-1].update(before=before or "", after=text)
                if not check:
                    write_atomic(path, text)
        except (InputError, OSError) as exc:
            line = exc.line() if isinstance(exc, InputError) else f"{exc.filename}: {exc.strerror}"
            return {**result, "failed": True, "msg": line}
        result["changed"] = bool(changed)
        result["paths"] = changed
        if self._play_context.diff and diffs:
            result["diff"] = diffs
        return result


def _wanted(entry: Any) -> tuple[Path, str]:
    """A `files` entry as the path to write and its text (a src file's text, read as it is)."""
    from tritonfleet.errors import InputError
    from tritonfleet.files import read_text

    if not isinstance(entry, dict) or "path" not in entry or ("content" in entry) == ("src" in entry):
        raise InputError(ACTION, "files", f"each entry needs path and one of content or src: {entry!r}")
    text = read_text(str(entry["src"])) if "src" in entry else str(entry["content"])
    return Path(str(entry["path"])), text
