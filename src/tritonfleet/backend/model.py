"""Triton Python backend for vLLM, installed as backend `vllm` in the CPU reference image.

It honours the contract of NVIDIA's vllm backend (shared/DESIGN.md, NVIDIA's README and docs) so that
one model repository serves both images: model.json goes to AsyncEngineArgs, the model is decoupled,
and the inputs, outputs and `vllm:` metrics carry the same names. Written from that contract, not
from NVIDIA's code.

Triton calls initialize/execute/finalize on the stub's main thread; generation runs as coroutines on
one asyncio loop in a background thread, so execute() returns at once and responses stream back
through each request's response sender.

Invariants:
- every request gets exactly one final response, error or not (`_generate`'s `finally`);
- a request refused before generation (bad values, dead engine, server stopping) fails in execute(),
  so that Triton counts it in nv_inference_request_failure;
- when the engine dies, its requests fail at once with UNAVAILABLE, and the model leaves service:
  it unloads itself when ENABLE_VLLM_HEALTH_CHECK is on under explicit model control (NVIDIA's
  contract), and otherwise stops tritonserver, whose supervisor (Docker's restart policy in
  compose.yaml) starts it afresh; see README "When the engine dies".
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import triton_python_backend_utils as pb_utils  # provided by the stub
import vllm
from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.exceptions import VLLMClientError
from vllm.lora.request import LoRARequest
from vllm.sampling_params import RequestOutputKind, SamplingParams
from vllm.v1.engine.async_llm import AsyncLLM
from vllm.v1.metrics.loggers import StatLoggerBase

from tritonfleet.backend.autocomplete import complete_config
from tritonfleet.backend.engine import (
    SAMPLING_FIELDS,
    EngineArgsError,
    load_engine_args,
    read_json_object,
    sampling_params,
)
from tritonfleet.backend.metrics import TritonMetrics
from tritonfleet.backend.request import GenerateRequest, RequestError, build_request
from tritonfleet.backend.responses import Sequence, Step, output_arrays
from tritonfleet.backend.server import parameter, parent_is_tritonserver
from tritonfleet.backend.shm import ShmTooSmallError, back, segments
from tritonfleet.serving.contract import (
    ENGINE_FILE,
    HEALTH_CHECK_PARAMETER,
    INPUTS,
    METRICS_PARAMETER,
    OPTIONAL_OUTPUTS,
)

FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
BOOL_INPUTS = tuple(name for name, kind in INPUTS.items() if kind == "TYPE_BOOL")
LORA_FILE = "multi_lora.json"
# How long finalize waits for in-flight requests; tritonserver's --exit-timeout-secs bounds it too.
DRAIN_SECONDS = 30.0
# How often a streaming request asks whether its client cancelled it.
CANCEL_CHECK_SECONDS = 0.1
# How often the watchdog looks at the engine (and refreshes the queue gauges).
WATCH_SECONDS = 0.5
# What the Python backend says when /dev/shm cannot hold a response.
SHM_FULL = "Failed to increase the shared memory pool size"
# How long a dead engine's requests get to send their error before the server is stopped.
ANSWER_SECONDS = 5.0
# NVIDIA's wording for a request refused by the health check.
UNHEALTHY = "Model is unavailable due to unhealthy vLLM engine"


class UnavailableError(Exception):
    """The model cannot serve now (engine dead, server stopping): a server fault, not the client's."""


def _input(request: Any, name: str) -> Any:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy().reshape(-1)[0]


def _logprobs_json(logprobs: Any) -> list[dict[str, dict[str, Any]]]:
    return [
        {
            str(token): {"logprob": lp.logprob, "rank": lp.rank, "decoded_token": lp.decoded_token}
            for token, lp in position.items()
        }
        for position in logprobs or []
    ]


def _error(message: str, code: Any) -> Any:
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message, code))


def _engine_state_logger(metrics: TritonMetrics) -> type[StatLoggerBase]:
    """A vLLM stat logger that feeds the scheduler's queue and cache gauges to Triton."""

    class EngineStateLogger(StatLoggerBase):
        def __init__(self, vllm_config: Any, engine_index: int = 0) -> None:
            self.engine_index = engine_index

        def record(self, scheduler_stats: Any, iteration_stats: Any, *args: Any, **kwargs: Any) -> None:
            if scheduler_stats is not None:
                metrics.engine_state(scheduler_stats.num_running_reqs, scheduler_stats.kv_cache_usage)

        def log_engine_initialized(self) -> None:
            pass

    return EngineStateLogger


class _Usage:
    """One request's token counts and timings for the metrics."""

    def __init__(self, metrics: TritonMetrics | None, n: int) -> None:
        self.metrics, self.n = metrics, n
        self.start = time.monotonic()
        self.first_token_at: float | None = None
        self.last_token_at: float | None = None
        self.prompt = 0
        self.generated = 0
        self.recorded = False

    def step(self, now: float, prompt_tokens: int, new_tokens: int) -> None:
        self.prompt = self.prompt or prompt_tokens
        if not new_tokens:
            return
        if self.first_token_at is None:
            self.first_token_at = now
            later = new_tokens - 1
        else:
            later = new_tokens
        if later and self.metrics is not None:
            self.metrics.output_tokens(now - (self.last_token_at or now), later)
        self.last_token_at = now
        self.generated += new_tokens

    def record(self, finished: bool) -> None:
        if self.recorded or self.metrics is None:
            return
        self.recorded = True
        self.metrics.tokens(self.prompt, self.generated)  # what the engine did, even when cancelled
        if self.first_token_at is not None:
            self.metrics.first_token(self.first_token_at - self.start)
        if finished:
            self.metrics.finished(time.monotonic() - self.start, self.prompt, self.generated, self.n)


class _Sequences:
    """What each of a request's n sequences produced so far."""

    def __init__(self, n: int) -> None:
        self.text = [""] * n
        self.logprobs: list[list[dict[str, dict[str, Any]]]] = [[] for _ in range(n)]
        self.tokens = [0] * n
        self.finish: list[str | None] = [None] * n
        self.cumulative: list[float | None] = [None] * n

    def add(self, completions: list[Any]) -> dict[int, Sequence]:
        """Take one step's deltas; return them per sequence index."""
        deltas = {}
        for completion in completions:
            i = completion.index
            logprobs = _logprobs_json(completion.logprobs)
            self.text[i] += completion.text
            self.logprobs[i] += logprobs
            self.tokens[i] += len(completion.token_ids)
            self.finish[i] = completion.finish_reason
            self.cumulative[i] = completion.cumulative_logprob
            deltas[i] = Sequence(
                completion.text,
                completion.finish_reason,
                completion.cumulative_logprob,
                logprobs,
                len(completion.token_ids),
            )
        return deltas


class TritonPythonModel:
    @staticmethod
    def auto_complete_config(auto_complete_model_config: Any) -> Any:
        return complete_config(auto_complete_model_config)

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        if not pb_utils.using_decoupled_model_transaction_policy(config):
            raise pb_utils.TritonModelException(
                "the vllm backend streams its responses: set model_transaction_policy { decoupled: true }"
            )
        self.name, self.version = args["model_name"], args["model_version"]
        version_dir = Path(args["model_repository"]) / self.version
        try:
            engine_args = load_engine_args(version_dir / ENGINE_FILE)
            self.loras = self._lora_map(version_dir, engine_args)
        except EngineArgsError as exc:
            pb_utils.Logger.log_error(str(exc))
            raise pb_utils.TritonModelException(str(exc)) from None
        # vLLM's stats off in model.json turn the vllm: metrics off too, as in NVIDIA's backend.
        report = parameter(config, METRICS_PARAMETER) == "true" and not engine_args.get("disable_log_stats")
        self.metrics = TritonMetrics({"model": self.name, "version": self.version}) if report else None
        self.health_check = parameter(config, HEALTH_CHECK_PARAMETER) == "true"
        loggers = [_engine_state_logger(self.metrics)] if self.metrics else None

        self.unavailable: str | None = None  # why new requests are refused, once they are
        self.active = 0
        self.inflight: set[concurrent.futures.Future[None]] = set()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="vllm-backend-loop", daemon=True)
        self.thread.start()
        before = segments()
        self.engine = self._run(self._start(AsyncEngineArgs(**engine_args), loggers)).result()
        try:
            backed = back(segments() - before)
        except ShmTooSmallError as exc:
            self.engine.shutdown()
            pb_utils.Logger.log_error(f"vllm backend: {self.name}: {exc.strerror}")
            raise pb_utils.TritonModelException(exc.strerror) from None
        self.watchdog = self._run(self._watch())
        pb_utils.Logger.log_info(
            f"vllm backend: {self.name} v{self.version} ready on vLLM {vllm.__version__} "
            f"({backed / 2**20:.0f} MiB of shared-memory queues backed)"
        )

    @staticmethod
    def _lora_map(version_dir: Path, engine_args: dict[str, Any]) -> dict[str, LoRARequest]:
        if not engine_args.get("enable_lora"):
            return {}
        paths = read_json_object(version_dir / LORA_FILE, "a JSON object of adapter name to path")
        return {name: LoRARequest(name, i, path) for i, (name, path) in enumerate(sorted(paths.items()), 1)}

    async def _start(self, engine_args: AsyncEngineArgs, loggers: list[Any] | None) -> AsyncLLM:
        return AsyncLLM.from_engine_args(engine_args, stat_loggers=loggers)

    def _run(self, coroutine: Any) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    # --- health --------------------------------------------------------------------------------

    async def _watch(self) -> None:
        """Notice a dead engine without waiting for a request to fail on it."""
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            if self.engine.errored and not self.unavailable:
                self._engine_died()
            if self.metrics:
                self.metrics.refresh()

    def _engine_died(self) -> None:
        cause = self.engine.dead_error
        self.unavailable = f"vLLM engine is dead: {cause}"
        if self.health_check and hasattr(pb_utils, "unload_model"):
            pb_utils.Logger.log_error(
                f"vllm backend: {self.name}: the vLLM engine died ({cause}); unloading the model "
                f"({HEALTH_CHECK_PARAMETER})"
            )
            threading.Thread(target=self._unload, name="vllm-backend-unload", daemon=True).start()
            return
        self._stop_server(cause)

    def _unload(self) -> None:
        try:
            pb_utils.unload_model(self.name)
        except Exception as exc:  # not under explicit model control: the server must go instead
            pb_utils.Logger.log_error(f"vllm backend: {self.name}: cannot unload itself: {exc}")
            self._stop_server(self.engine.dead_error)

    def _stop_server(self, cause: object) -> None:
        parent = os.getppid()
        if not parent_is_tritonserver(parent):
            pb_utils.Logger.log_error(
                f"vllm backend: {self.name}: the vLLM engine died ({cause}); its requests fail until "
                "the server is restarted"
            )
            return
        pb_utils.Logger.log_error(
            f"vllm backend: {self.name}: the vLLM engine died ({cause}); stopping tritonserver so that "
            "its supervisor starts it afresh"
        )
        self._run(self._signal_when_answered(parent))

    async def _signal_when_answered(self, parent: int) -> None:
        # Let the requests in flight send their error first: once the server stops, they cannot.
        deadline = time.monotonic() + ANSWER_SECONDS
        while self.active and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        os.kill(parent, signal.SIGTERM)

    # --- requests ------------------------------------------------------------------------------

    def execute(self, requests: list[Any]) -> None:
        refused: list[str] = []
        for request in requests:
            sender = request.get_response_sender()
            try:
                job = self._admit(request)
            except RequestError as exc:
                self._refuse(sender, str(exc), pb_utils.TritonError.INVALID_ARG, "invalid", refused)
                continue
            except UnavailableError as exc:
                self._refuse(sender, str(exc), pb_utils.TritonError.UNAVAILABLE, "unavailable", refused)
                continue
            except Exception as exc:  # a bug here must cost one request, not the model
                pb_utils.Logger.log_error(f"vllm backend: {self.name}: request refused: {exc!r}")
                self._refuse(
                    sender, f"internal error: {exc}", pb_utils.TritonError.INTERNAL, "error", refused
                )
                continue
            future = self._run(self._generate(*job, sender))
            self.inflight.add(future)
            future.add_done_callback(self.inflight.discard)
        if refused and len(refused) == len(requests):
            # Every sender is closed, so raising costs nothing but makes Triton count the failures.
            raise pb_utils.TritonModelException(refused[0])
        return None

    def _refuse(self, sender: Any, message: str, code: Any, reason: str, refused: list[str]) -> None:
        sender.send(_error(message, code), flags=FINAL)
        self._failed(reason)
        refused.append(message)

    def _admit(self, request: Any) -> tuple[GenerateRequest, SamplingParams, LoRARequest | None]:
        if self.health_check and self.engine.errored:
            if not self.unavailable:
                self._engine_died()
            raise UnavailableError(UNHEALTHY)
        if self.unavailable:
            raise UnavailableError(self.unavailable)
        parsed = build_request(
            _input(request, "text_input"),
            _input(request, "sampling_parameters"),
            {name: bool(value) for name in BOOL_INPUTS if (value := _input(request, name)) is not None},
            OPTIONAL_OUTPUTS,
            request.parameters(),
            SAMPLING_FIELDS,
        )
        return parsed, sampling_params(parsed.sampling), self._lora(parsed.lora_name)

    def _lora(self, name: str | None) -> LoRARequest | None:
        # NVIDIA's wording, so that clients match on the same text.
        if name is None:
            return None
        if not self.loras:
            raise RequestError("LoRA feature is not enabled.")
        if name not in self.loras:
            raise RequestError(f"LoRA {name} is not supported, we currently support {sorted(self.loras)}")
        return self.loras[name]

    def _response(self, step: Step, wanted: frozenset[str]) -> Any:
        tensors = [pb_utils.Tensor(name, array) for name, array in output_arrays(step, wanted).items()]
        return pb_utils.InferenceResponse(output_tensors=tensors)

    async def _generate(
        self, req: GenerateRequest, params: SamplingParams, lora: LoRARequest | None, sender: Any
    ) -> None:
        request_id = uuid.uuid4().hex
        # Deltas let one loop serve both modes; the engine sends one per step.
        params.output_kind = RequestOutputKind.DELTA
        usage = _Usage(self.metrics, n=params.n)
        seqs = _Sequences(params.n)
        cancel_checked_at = usage.start
        final_sent = False
        self._active(+1)
        try:
            async for output in self.engine.generate(req.prompt, params, request_id, lora_request=lora):
                now = time.monotonic()
                if now - cancel_checked_at >= CANCEL_CHECK_SECONDS:
                    # is_cancelled() is a round trip to the server: ask a few times a second, not per token.
                    cancel_checked_at = now
                    if sender.is_cancelled():
                        await self.engine.abort(request_id)
                        usage.record(finished=False)
                        final_sent = True
                        self._failed("cancelled")
                        sender.send(_error("request cancelled", pb_utils.TritonError.CANCELLED), flags=FINAL)
                        return
                deltas = seqs.add(output.outputs)
                usage.step(
                    now, len(output.prompt_token_ids or []), sum(d.num_output_tokens for d in deltas.values())
                )
                if output.finished:
                    # Before the final response, so a client that reads metrics right after sees them.
                    usage.record(finished=True)
                    self._succeeded(seqs.finish)
                if req.stream:
                    step = Step(
                        tuple(self._delta(deltas, seqs, i, req) for i in range(params.n)), usage.prompt
                    )
                elif output.finished:
                    step = Step(tuple(self._whole(seqs, i, req) for i in range(params.n)), usage.prompt)
                else:
                    continue
                # The last data goes out as an ordinary response and the end as a flag of its own: a
                # send that fails (no shared memory left for a big response) closes the sender when it
                # carries the final flag, and the client would never hear of the failure.
                sender.send(self._response(step, req.outputs))
                if output.finished:
                    final_sent = True
                    sender.send(flags=FINAL)
        except Exception as exc:
            final_sent = True
            await self._abort(request_id)
            usage.record(finished=False)
            self._send_final(sender, self._failure(request_id, exc), request_id)
        finally:
            usage.record(finished=False)  # no-op when already recorded
            self._active(-1)
            if not final_sent:  # the engine ended the stream without a finished output
                self._failed("error")
                sender.send(
                    _error("generation ended without a result", pb_utils.TritonError.INTERNAL), flags=FINAL
                )

    def _delta(self, deltas: dict[int, Sequence], seqs: _Sequences, i: int, req: GenerateRequest) -> Sequence:
        if i in deltas:
            delta = deltas[i]
            return (
                delta
                if req.client_logprobs
                else Sequence(
                    delta.text, delta.finish_reason, delta.cumulative_logprob, None, delta.num_output_tokens
                )
            )
        # This sequence made nothing in this step (n > 1): an empty delta, in its place.
        return Sequence("", seqs.finish[i], seqs.cumulative[i], [] if req.client_logprobs else None, 0)

    def _whole(self, seqs: _Sequences, i: int, req: GenerateRequest) -> Sequence:
        text = seqs.text[i] if req.exclude_input_in_output else req.prompt + seqs.text[i]
        logprobs = seqs.logprobs[i] if req.client_logprobs else None
        return Sequence(text, seqs.finish[i], seqs.cumulative[i], logprobs, seqs.tokens[i])

    def _failure(self, request_id: str, exc: Exception) -> Any:
        if self.engine.errored:
            self._failed("unavailable")
            return _error(f"vLLM engine is dead: {self.engine.dead_error}", pb_utils.TritonError.UNAVAILABLE)
        if isinstance(exc, (ValueError, TypeError, VLLMClientError)):
            # Refused by the engine's own input checks (a prompt longer than max_model_len, ...).
            self._failed("invalid")
            return _error(f"request refused by vLLM: {exc}", pb_utils.TritonError.INVALID_ARG)
        pb_utils.Logger.log_error(f"vllm backend: request {request_id} failed: {exc!r}")
        if SHM_FULL in str(exc):
            self._failed("unavailable")
            return _error(f"server out of shared memory (/dev/shm): {exc}", pb_utils.TritonError.UNAVAILABLE)
        self._failed("error")
        return _error(f"generation failed: {exc!r}", pb_utils.TritonError.INTERNAL)

    @staticmethod
    def _send_final(sender: Any, response: Any, request_id: str) -> None:
        """Send a request's error; a failed send closes the sender, so one that fails is logged, never
        retried (and never silent)."""
        try:
            sender.send(response, flags=FINAL)
        except Exception as exc:
            pb_utils.Logger.log_error(f"vllm backend: cannot answer request {request_id}: {exc!r}")

    async def _abort(self, request_id: str) -> None:
        if not self.engine.errored:
            try:
                await self.engine.abort(request_id)
            except Exception as exc:  # the request is answered whatever happens here
                pb_utils.Logger.log_warn(f"vllm backend: abort of {request_id} failed: {exc!r}")

    def _active(self, change: int) -> None:
        self.active += change
        if self.metrics:
            self.metrics.inflight(self.active)

    def _failed(self, reason: str) -> None:
        if self.metrics:
            self.metrics.failed(reason)

    def _succeeded(self, reasons: list[str | None]) -> None:
        if self.metrics:
            self.metrics.succeeded(reasons[0])

    # --- shutdown ------------------------------------------------------------------------------

    def finalize(self) -> None:
        self.unavailable = self.unavailable or "the model is unloading"
        pending = list(self.inflight)
        if pending:
            pb_utils.Logger.log_info(f"vllm backend: draining {len(pending)} request(s)")
            concurrent.futures.wait(pending, timeout=DRAIN_SECONDS)
        self.watchdog.cancel()
        self.engine.shutdown()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if self.metrics:
            self.metrics.close()
        pb_utils.Logger.log_info(f"vllm backend: {self.name} v{self.version} stopped")
