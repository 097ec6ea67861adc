"""tritonfleet: reproducible Triton Inference Server + vLLM deployments for bare-metal GPU fleets."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tritonfleet")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
