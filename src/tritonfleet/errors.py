"""The one error type that bad input raises.

Every command turns an InputError into a single line on stderr, naming the file and the field,
and exit code 2, before anything is written.
"""

from __future__ import annotations

from pathlib import Path

EXIT_BAD_INPUT = 2


class InputError(Exception):
    """Bad input from an operator: a file, a field in it, and what is wrong with it."""

    def __init__(self, source: str | Path, field: str | None, message: str) -> None:
        self.source = str(source)
        self.field = field
        self.message = message
        super().__init__(self.line())

    def line(self) -> str:
        where = f"{self.source}: {self.field}" if self.field else self.source
        # One line, whatever the message carried: operators grep logs.
        return f"{where}: {' '.join(self.message.split())}"
