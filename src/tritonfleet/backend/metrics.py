"""The `vllm:` metrics, exported through Triton's custom metrics API beside the nv_* metrics.

Only built when the model's config sets REPORT_CUSTOM_METRICS to "true" and model.json leaves vLLM's
stats on (`disable_log_stats` false), as in the official backend.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import triton_python_backend_utils as pb_utils

from tritonfleet.serving.contract import COUNTERS, GAUGES, HISTOGRAMS, OUTCOME_COUNTERS

QUEUE_UPDATE_SECONDS = 0.25


class TritonMetrics:
    def __init__(self, labels: dict[str, str]) -> None:
        # Families are process-wide in Triton; keep references so they live as long as the model.
        self._families: list[Any] = []
        self._metrics: dict[str, Any] = {}
        self._outcomes: dict[tuple[str, str], Any] = {}
        self._shown: tuple[int, int] | None = None
        self._scheduled_running = 0
        self._inflight = 0
        self._queue_set_at = 0.0
        self._kv_usage: float | None = None
        self._kv_set_at = 0.0
        for name, description in COUNTERS.items():
            self._add(name, description, pb_utils.MetricFamily.COUNTER, labels)
        for name, description in GAUGES.items():
            self._add(name, description, pb_utils.MetricFamily.GAUGE, labels)
        for name, (description, buckets) in HISTOGRAMS.items():
            self._add(name, description, pb_utils.MetricFamily.HISTOGRAM, labels, list(buckets))
        for name, (description, label, values) in OUTCOME_COUNTERS.items():
            family = pb_utils.MetricFamily(
                name=name, description=description, kind=pb_utils.MetricFamily.COUNTER
            )
            self._families.append(family)
            for value in values:
                self._outcomes[name, value] = family.Metric(labels={**labels, label: value})

    def _add(
        self, name: str, description: str, kind: Any, labels: dict[str, str], buckets: list | None = None
    ):
        family = pb_utils.MetricFamily(name=name, description=description, kind=kind)
        self._families.append(family)
        if buckets is None:
            self._metrics[name] = family.Metric(labels=labels)
        else:
            self._metrics[name] = family.Metric(labels=labels, buckets=buckets)

    def close(self) -> None:
        """Free every metric now, while the stub can still tell the server: left to the interpreter's
        exit, their destructors run after the stub's shared memory is gone, and the stub segfaults
        (tritonserver then exits 1 on a clean stop)."""
        self._metrics.clear()
        self._outcomes.clear()
        self._families.clear()
        gc.collect()

    def tokens(self, prompt: int, generated: int) -> None:
        if prompt:
            self._metrics["vllm:prompt_tokens_total"].increment(prompt)
        if generated:
            self._metrics["vllm:generation_tokens_total"].increment(generated)

    def first_token(self, seconds: float) -> None:
        self._metrics["vllm:time_to_first_token_seconds"].observe(seconds)

    def output_tokens(self, seconds: float, count: int) -> None:
        """`count` tokens after the first arrived `seconds` after the previous ones: one observation
        per token, as vLLM and NVIDIA's backend count them."""
        histogram = self._metrics["vllm:time_per_output_token_seconds"]
        for _ in range(count):
            histogram.observe(seconds / count)

    def finished(self, e2e_seconds: float, prompt_tokens: int, generation_tokens: int, n: int) -> None:
        self._metrics["vllm:e2e_request_latency_seconds"].observe(e2e_seconds)
        self._metrics["vllm:request_prompt_tokens"].observe(prompt_tokens)
        self._metrics["vllm:request_generation_tokens"].observe(generation_tokens)
        self._metrics["vllm:request_params_n"].observe(n)

    def outcome(self, name: str, label: str) -> None:
        metric = self._outcomes.get((name, label))
        if metric is not None:
            metric.increment(1)

    def succeeded(self, finish_reason: str | None) -> None:
        self.outcome("vllm:request_success_total", finish_reason or "abort")

    def failed(self, reason: str) -> None:
        self.outcome("tritonfleet:request_failure_total", reason)

    def inflight(self, count: int) -> None:
        """The requests the engine holds, as the backend counts them: the scheduler's figures alone
        go stale when the engine stops stepping (a hung engine would read 0 running, 0 waiting)."""
        self._inflight = count
        self._show_queue()

    def refresh(self) -> None:
        """Push the queue gauges now if they changed (the watchdog calls this twice a second, so that
        the last change always reaches the server)."""
        self._show_queue(force=True)

    def _show_queue(self, force: bool = False) -> None:
        # At most four times a second: every update is a round trip to the server, and requests
        # start and end far more often than anyone scrapes.
        now = time.monotonic()
        if not force and now - self._queue_set_at < QUEUE_UPDATE_SECONDS:
            return
        running = min(self._scheduled_running, self._inflight)
        shown = (running, self._inflight - running)
        if shown != self._shown:
            self._metrics["vllm:num_requests_running"].set(shown[0])
            self._metrics["vllm:num_requests_waiting"].set(shown[1])
            self._shown = shown
            self._queue_set_at = now

    def engine_state(self, running: int, kv_cache_usage: float) -> None:
        """Called every engine step: only changes go to the server, the cache usage at most once a second
        unless the queue changed (so an idle engine always ends with fresh values)."""
        now = time.monotonic()
        before = self._shown
        self._scheduled_running = running
        self._show_queue()
        if kv_cache_usage != self._kv_usage and (self._shown != before or now - self._kv_set_at >= 1.0):
            self._metrics["vllm:kv_cache_usage_perc"].set(kv_cache_usage)
            self._kv_usage, self._kv_set_at = kv_cache_usage, now
