"""The vllm backend's model contract (shared/DESIGN.md), shared by the validator and our backend.

Every tensor holds a single element (dims [1]); the model is decoupled with max_batch_size 0.
"""

from __future__ import annotations

BACKEND = "vllm"
METRICS_PARAMETER = "REPORT_CUSTOM_METRICS"
ENGINE_FILE = "model.json"

INPUTS: dict[str, str] = {
    "text_input": "TYPE_STRING",
    "stream": "TYPE_BOOL",
    "sampling_parameters": "TYPE_STRING",
    "exclude_input_in_output": "TYPE_BOOL",
    "return_finish_reason": "TYPE_BOOL",
    "return_cumulative_logprob": "TYPE_BOOL",
    "return_logprobs": "TYPE_BOOL",
    "return_num_input_tokens": "TYPE_BOOL",
    "return_num_output_tokens": "TYPE_BOOL",
}
REQUIRED_INPUTS = frozenset({"text_input"})

OUTPUTS: dict[str, str] = {
    "text_output": "TYPE_STRING",
    "finish_reason": "TYPE_STRING",
    "cumulative_logprob": "TYPE_FP32",
    "logprobs": "TYPE_STRING",
    "num_input_tokens": "TYPE_UINT32",
    "num_output_tokens": "TYPE_UINT32",
}
REQUIRED_OUTPUTS = frozenset({"text_output"})

# The optional output each return_* input switches on.
OPTIONAL_OUTPUTS: dict[str, str] = {
    "return_finish_reason": "finish_reason",
    "return_cumulative_logprob": "cumulative_logprob",
    "return_logprobs": "logprobs",
    "return_num_input_tokens": "num_input_tokens",
    "return_num_output_tokens": "num_output_tokens",
}

# Custom metrics, exported through Triton's metrics endpoint with labels model and version.
COUNTERS: dict[str, str] = {
    "vllm:prompt_tokens_total": "Number of prefill tokens processed.",
    "vllm:generation_tokens_total": "Number of generation tokens processed.",
}
HISTOGRAMS: dict[str, tuple[str, tuple[float, ...]]] = {
    "vllm:time_to_first_token_seconds": (
        "Histogram of time to first token in seconds.",
        (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0),
    ),
    "vllm:time_per_output_token_seconds": (
        "Histogram of time per output token in seconds.",
        (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5),
    ),
    "vllm:e2e_request_latency_seconds": (
        "Histogram of end to end request latency in seconds.",
        (1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0),
    ),
    "vllm:request_prompt_tokens": (
        "Number of prefill tokens processed.",
        (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000),
    ),
    "vllm:request_generation_tokens": (
        "Number of generation tokens processed.",
        (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000),
    ),
    "vllm:request_params_n": ("Histogram of the n request parameter.", (1, 2, 5, 10, 20)),
}
# What the official backend lacks: the engine's queue and cache state, and how requests ended.
GAUGES: dict[str, str] = {
    "vllm:num_requests_running": "Number of requests currently running on the engine.",
    "vllm:num_requests_waiting": "Number of requests waiting to be processed.",
    "vllm:kv_cache_usage_perc": "KV-cache usage. 1 means 100 percent usage.",
}
# Labelled by how the request ended: vLLM's finished_reason for a success, a reason for a failure.
# Triton's nv_inference_request_failure counts only requests refused before generation starts: for a
# decoupled model it counts a request when execute() returns, before any token is made.
OUTCOME_COUNTERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "vllm:request_success_total": (
        "Count of successfully processed requests.",
        "finished_reason",
        ("stop", "length", "abort"),
    ),
    "tritonfleet:request_failure_total": (
        "Count of requests that ended in an error response, by reason.",
        "reason",
        ("invalid", "unavailable", "cancelled", "error"),
    ),
}
# Model config parameters the backend reads, besides REPORT_CUSTOM_METRICS.
HEALTH_CHECK_PARAMETER = "ENABLE_VLLM_HEALTH_CHECK"
