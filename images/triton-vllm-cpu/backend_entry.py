"""What Triton loads as backends/vllm/model.py: the backend itself is the tritonfleet.backend package."""

from tritonfleet.backend.model import TritonPythonModel

__all__ = ["TritonPythonModel"]
