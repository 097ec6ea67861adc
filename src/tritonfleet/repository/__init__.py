"""Triton model repositories for the vllm backend: load (model), check (validate), write (render)."""
