"""tritonfleet: reproducible Triton Inference Server + vLLM deployments for bare-metal GPU fleets."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # __version__ is looked up on first use: importlib.metadata costs a command 35 ms at start.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("tritonfleet")
        except PackageNotFoundError:  # a source tree that was never installed
            return "0+unknown"
    raise AttributeError(f"module 'tritonfleet' has no attribute {name!r}")
