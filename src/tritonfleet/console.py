"""The rich console every table goes to (the CLI's and the benchmarks')."""

from __future__ import annotations

import sys

from rich.console import Console


def console() -> Console:
    # Piped output (CI logs, Ansible) gets a fixed wide layout instead of rich's 80-column default.
    return Console() if sys.stdout.isatty() else Console(width=160)
