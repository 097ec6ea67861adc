"""The `vllm:` metrics, exported through Triton's custom metrics API beside the nv_* metrics.

Only built when the model's config sets REPORT_CUSTOM_METRICS to "true", as in the official backend.
"""

from __future__ import annotations

import time
from typing import Any

import triton_python_backend_utils as pb_utils

from tritonfleet.serving.contract import COUNTERS, GAUGES, HISTOGRAMS


class TritonMetrics:
    def __init__(self, labels: dict[str, str]) -> None:
        # Families are process-wide in Triton; keep references so they live as long as the model.
        self._families: list[Any] = []
        self._metrics: dict[str, Any] = {}
        self._queue: tuple[int, int] | None = None
        self._kv_usage: float | None = None
        self._kv_set_at = 0.0
        for name, description in COUNTERS.items():
            self._add(name, description, pb_utils.MetricFamily.COUNTER, labels)
        for name, description in GAUGES.items():
            self._add(name, description, pb_utils.MetricFamily.GAUGE, labels)
        for name, (description, buckets) in HISTOGRAMS.items():
            self._add(name, description, pb_utils.MetricFamily.HISTOGRAM, labels, list(buckets))

    def _add(
        self, name: str, description: str, kind: Any, labels: dict[str, str], buckets: list | None = None
    ):
        family = pb_utils.MetricFamily(name=name, description=description, kind=kind)
        self._families.append(family)
        if buckets is None:
            self._metrics[name] = family.Metric(labels=labels)
        else:
            self._metrics[name] = family.Metric(labels=labels, buckets=buckets)

    def tokens(self, prompt: int, generated: int) -> None:
        if prompt:
            self._metrics["vllm:prompt_tokens_total"].increment(prompt)
        if generated:
            self._metrics["vllm:generation_tokens_total"].increment(generated)

    def first_token(self, seconds: float) -> None:
        self._metrics["vllm:time_to_first_token_seconds"].observe(seconds)

    def time_per_output_token(self, seconds: float) -> None:
        # One observation per request (its mean), not one per token, to keep updates off the token path.
        self._metrics["vllm:time_per_output_token_seconds"].observe(seconds)

    def finished(self, e2e_seconds: float, prompt_tokens: int, generation_tokens: int, n: int) -> None:
        self._metrics["vllm:e2e_request_latency_seconds"].observe(e2e_seconds)
        self._metrics["vllm:request_prompt_tokens"].observe(prompt_tokens)
        self._metrics["vllm:request_generation_tokens"].observe(generation_tokens)
        self._metrics["vllm:request_params_n"].observe(n)

    def engine_state(self, running: int, waiting: int, kv_cache_usage: float) -> None:
        """Called every engine step: only changes go to the server, the cache usage at most once a second
        unless the queue changed (so an idle engine always ends with fresh values)."""
        now = time.monotonic()
        queue_changed = (running, waiting) != self._queue
        if queue_changed:
            self._metrics["vllm:num_requests_running"].set(running)
            self._metrics["vllm:num_requests_waiting"].set(waiting)
            self._queue = (running, waiting)
        if kv_cache_usage != self._kv_usage and (queue_changed or now - self._kv_set_at >= 1.0):
            self._metrics["vllm:kv_cache_usage_perc"].set(kv_cache_usage)
            self._kv_usage, self._kv_set_at = kv_cache_usage, now
