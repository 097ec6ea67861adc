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
        # One line, whatever the file name, the field or the message carried: operators grep logs.
        where = (
            f"{_printable(self.source)}: {_printable(self.field)}" if self.field else _printable(self.source)
        )
        return f"{where}: {' '.join(self.message.split())}"


def _printable(text: str) -> str:
    """TEXT with control characters (a newline in a file name or a JSON key) escaped."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")
