"""The `tritonfleet` command: a registry of subcommands, one module each.

Each command module has `add_arguments(parser)`, `validate(args)` (flag checks, no I/O) and `run(args)`,
a thin adapter over library code that it imports when it runs: `tritonfleet --help` and a command's
own help load nothing but argparse, and a command loads only what it uses.

Exit codes: 0 success; 2 bad input, bad arguments or a file that cannot be read or written (one line on
stderr naming the file and the field, and nothing written); `smoke` adds 1 for a failed check.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from tritonfleet.errors import EXIT_BAD_INPUT, InputError

# name -> (module, one-line help). The help lives here so that listing commands imports none of them.
COMMANDS: dict[str, tuple[str, str]] = {
    "facts": ("facts", "inventory of this host's GPUs from nvidia-smi output"),
    "validate": ("validate", "check a model repository without writing anything"),
    "render": ("render", "validate a model repository and write a per-host copy"),
    "plan": ("plan", "gpu_memory_utilization per model for a host's GPUs and co-tenants"),
    "memory": ("memory", "vLLM GPU memory from a model's config.json"),
    "smoke": ("smoke", "post-deploy gate: check every model on one or many live Triton servers"),
    "rollout-report": ("rollout_report", "one row per host of the last rollout (make deploy prints it)"),
    "versions": ("versions", "print pinned versions from images/versions.yaml"),
    "engine-args": ("engine_args", "re-extract the pinned vLLMs' engine-argument lists"),
    "testmodel": ("testmodel", "write a tiny random-weight Llama that vLLM loads (no hub)"),
}


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other error of tritonfleet."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {' '.join(message.split())}\n")


class _Version(argparse.Action):
    """--version, with the version looked up only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        import tritonfleet

        print(f"{parser.prog} {tritonfleet.__version__}")  # on stdout, as argparse's own --version
        parser.exit(0)


def _module(name: str):
    return importlib.import_module(f"tritonfleet.cli.{COMMANDS[name][0]}")


def build_parser(only: str | None = None) -> Parser:
    """The parser; with `only`, just that command gets its arguments (the others are listed)."""
    parser = Parser(
        prog="tritonfleet",
        description="Triton Inference Server + vLLM deployments for bare-metal GPU fleets.",
    )
    parser.add_argument("--version", action=_Version, help="show the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for name, (_, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            _module(name).add_arguments(sub)
    return parser


def _chosen(argv: Sequence[str]) -> str | None:
    """The command named on the command line, found without parsing the rest."""
    for arg in argv:
        if arg in COMMANDS:
            return arg
        if not arg.startswith("-"):
            return None
    return None


def _quiet_stdout() -> None:
    # stdout is gone (a closed pipe, a full disk): stop Python flushing it again at exit.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    # tritonfleet uses no pydantic plugins; looking for them scans every installed distribution's
    # metadata, a sixth of a command's start-up (PYDANTIC_DISABLE_PLUGINS is pydantic's own switch).
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    argv = list(sys.argv[1:] if argv is None else argv)
    if sys.stdout is None or sys.stderr is None:
        # Started with stdout or stderr closed (`>&-`): fail before any work, not after writing DEST.
        if sys.stderr is not None:
            print("tritonfleet: error: stdout is closed; give it a file or /dev/null", file=sys.stderr)
        return EXIT_BAD_INPUT
    parser = build_parser(_chosen(argv))
    args = parser.parse_args(argv)
    module = _module(args.command)
    # Errors name the command as its usage line does: `tritonfleet memory estimate`.
    label = " ".join(filter(None, (args.command, getattr(args, "memory_command", None))))
    try:
        module.validate(args)
        code = int(module.run(args))
        sys.stdout.flush()
        return code
    except InputError as exc:
        print(f"tritonfleet {label}: error: {exc.line()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BAD_INPUT
    except OSError as exc:
        # Writing to stdout or a file failed (ENOSPC, EROFS, EIO): one line, never a traceback.
        where = exc.filename or "stdout"
        print(f"tritonfleet {label}: error: {where}: {exc.strerror or exc}", file=sys.stderr)
        if exc.filename is None:
            _quiet_stdout()
        return EXIT_BAD_INPUT
