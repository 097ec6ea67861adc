"""Triton's auto-complete for the vllm backend: what a config.pbtxt may leave out (NVIDIA's sample
config gives only the backend and the instance group).

tritonfleet's own model repositories spell everything out, because production servers run with
--disable-auto-complete-config; this is for repositories written for NVIDIA's backend.
"""

from __future__ import annotations

from typing import Any

from tritonfleet.serving.contract import INPUTS, OUTPUTS, REQUIRED_INPUTS


def missing_io(config: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The inputs and outputs of the contract that `config` does not declare, in contract order."""
    have_inputs = {entry.get("name") for entry in config.get("input", [])}
    have_outputs = {entry.get("name") for entry in config.get("output", [])}
    inputs = [
        {"name": name, "data_type": kind, "dims": [1], "optional": name not in REQUIRED_INPUTS}
        for name, kind in INPUTS.items()
        if name not in have_inputs
    ]
    # Outputs hold one element per sequence (n > 1 gives n).
    outputs = [
        {"name": name, "data_type": kind, "dims": [-1]}
        for name, kind in OUTPUTS.items()
        if name not in have_outputs
    ]
    return inputs, outputs


def complete_config(auto_complete_model_config: Any) -> Any:
    config = auto_complete_model_config.as_dict()
    inputs, outputs = missing_io(config)
    for entry in inputs:
        auto_complete_model_config.add_input(entry)
    for entry in outputs:
        auto_complete_model_config.add_output(entry)
    # Streaming needs the decoupled policy; Triton's batching stays off (vLLM batches in the engine).
    auto_complete_model_config.set_model_transaction_policy({"decoupled": True})
    auto_complete_model_config.set_max_batch_size(0)
    return auto_complete_model_config
