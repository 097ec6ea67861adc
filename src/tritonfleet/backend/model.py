"""Triton Python backend for vLLM, installed as backend `vllm` in the CPU reference image.

It honours the contract of NVIDIA's vllm backend (shared/DESIGN.md) so that one model repository
serves both images: model.json goes to AsyncEngineArgs, the model is decoupled, and the inputs,
outputs and `vllm:` metrics carry the same names. Written from that contract, not from NVIDIA's code.

Triton calls initialize/execute/finalize on the stub's main thread; generation runs as coroutines on
one asyncio loop in a background thread, so execute() returns at once and responses stream back
through each request's response sender.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import triton_python_backend_utils as pb_utils  # provided by the stub
import vllm
from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.lora.request import LoRARequest
from vllm.sampling_params import RequestOutputKind, SamplingParams
from vllm.v1.engine.async_llm import AsyncLLM
from vllm.v1.metrics.loggers import StatLoggerBase

from tritonfleet.backend.metrics import TritonMetrics
from tritonfleet.backend.request import GenerateRequest, RequestError, build_request
from tritonfleet.backend.responses import Step, output_arrays
from tritonfleet.serving.contract import ENGINE_FILE, INPUTS, METRICS_PARAMETER, OPTIONAL_OUTPUTS

FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
BOOL_INPUTS = tuple(name for name, kind in INPUTS.items() if kind == "TYPE_BOOL")
LORA_FILE = "multi_lora.json"
# How long finalize waits for in-flight requests; tritonserver's --exit-timeout-secs bounds it too.
DRAIN_SECONDS = 30.0
# How often a streaming request asks whether its client cancelled it.
CANCEL_CHECK_SECONDS = 0.1


def _input(request: Any, name: str) -> Any:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy().reshape(-1)[0]


def _logprobs_json(logprobs: Any) -> list[dict[str, dict[str, Any]]] | None:
    if logprobs is None:
        return None
    return [
        {
            str(token): {"logprob": lp.logprob, "rank": lp.rank, "decoded_token": lp.decoded_token}
            for token, lp in position.items()
        }
        for position in logprobs
    ]


def _error(message: str, code: Any = None) -> Any:
    error = pb_utils.TritonError(message) if code is None else pb_utils.TritonError(message, code)
    return pb_utils.InferenceResponse(output_tensors=[], error=error)


def _engine_state_logger(metrics: TritonMetrics) -> type[StatLoggerBase]:
    """A vLLM stat logger that feeds the scheduler's queue and cache gauges to Triton."""

    class EngineStateLogger(StatLoggerBase):
        def __init__(self, vllm_config: Any, engine_index: int = 0) -> None:
            self.engine_index = engine_index

        def record(self, scheduler_stats: Any, iteration_stats: Any, *args: Any, **kwargs: Any) -> None:
            if scheduler_stats is not None:
                metrics.engine_state(
                    scheduler_stats.num_running_reqs,
                    scheduler_stats.num_waiting_reqs,
                    scheduler_stats.kv_cache_usage,
                )

        def log_engine_initialized(self) -> None:
            pass

    return EngineStateLogger


class _Usage:
    """One request's token counts and timings, sent to the metrics once, when the request ends.

    Once per request rather than per token: every metric update is a round trip to the server.
    """

    def __init__(self, metrics: TritonMetrics | None, n: int) -> None:
        self.metrics, self.n = metrics, n
        self.start = time.monotonic()
        self.first_token_at: float | None = None
        self.prompt = 0
        self.generated = 0
        self.recorded = False

    def step(self, now: float, prompt_tokens: int, new_tokens: int) -> None:
        self.prompt = self.prompt or prompt_tokens
        if new_tokens and self.first_token_at is None:
            self.first_token_at = now
        self.generated += new_tokens

    def record(self, finished: bool) -> None:
        if self.recorded or self.metrics is None:
            return
        self.recorded = True
        end = time.monotonic()
        self.metrics.tokens(self.prompt, self.generated)  # what the engine did, even when cancelled
        if self.first_token_at is not None:
            self.metrics.first_token(self.first_token_at - self.start)
        if finished:
            self.metrics.finished(end - self.start, self.prompt, self.generated, self.n)
            if self.first_token_at is not None and self.generated > 1:
                self.metrics.time_per_output_token((end - self.first_token_at) / (self.generated - 1))


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        if not pb_utils.using_decoupled_model_transaction_policy(config):
            raise pb_utils.TritonModelException(
                "the vllm backend streams its responses: set model_transaction_policy { decoupled: true }"
            )
        self.name, self.version = args["model_name"], args["model_version"]
        version_dir = Path(args["model_repository"]) / self.version
        engine_args = self._engine_args(version_dir / ENGINE_FILE)
        self.loras = self._lora_map(version_dir, engine_args)
        report = config.get("parameters", {}).get(METRICS_PARAMETER, {}).get("string_value", "false")
        self.metrics = (
            TritonMetrics({"model": self.name, "version": self.version}) if report == "true" else None
        )
        loggers = [_engine_state_logger(self.metrics)] if self.metrics else None

        self.inflight: set[concurrent.futures.Future[None]] = set()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="vllm-backend-loop", daemon=True)
        self.thread.start()
        self.engine = self._run(self._start(AsyncEngineArgs(**engine_args), loggers)).result()
        pb_utils.Logger.log_info(
            f"vllm backend: {self.name} v{self.version} ready on vLLM {vllm.__version__}"
        )

    @staticmethod
    def _engine_args(path: Path) -> dict[str, Any]:
        engine_args = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in dataclasses.fields(AsyncEngineArgs)}
        unknown = sorted(set(engine_args) - known)
        if unknown:
            message = f"{path}: unknown engine argument(s) {', '.join(unknown)} for vLLM {vllm.__version__}"
            pb_utils.Logger.log_error(message)
            raise pb_utils.TritonModelException(message)
        return engine_args

    @staticmethod
    def _lora_map(version_dir: Path, engine_args: dict[str, Any]) -> dict[str, LoRARequest]:
        if not engine_args.get("enable_lora"):
            return {}
        paths = json.loads((version_dir / LORA_FILE).read_text(encoding="utf-8"))
        return {name: LoRARequest(name, i, path) for i, (name, path) in enumerate(sorted(paths.items()), 1)}

    async def _start(self, engine_args: AsyncEngineArgs, loggers: list[Any] | None) -> AsyncLLM:
        return AsyncLLM.from_engine_args(engine_args, stat_loggers=loggers)

    def _run(self, coroutine: Any) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    # --- requests ------------------------------------------------------------------------------

    def execute(self, requests: list[Any]) -> None:
        for request in requests:
            sender = request.get_response_sender()
            try:
                parsed = build_request(
                    _input(request, "text_input"),
                    _input(request, "sampling_parameters"),
                    {
                        name: bool(value)
                        for name in BOOL_INPUTS
                        if (value := _input(request, name)) is not None
                    },
                    OPTIONAL_OUTPUTS,
                )
                lora = self._lora(parsed.lora_name)
            except RequestError as exc:
                sender.send(_error(str(exc)), flags=FINAL)
                continue
            future = self._run(self._generate(parsed, lora, sender))
            self.inflight.add(future)
            future.add_done_callback(self.inflight.discard)
        return None

    def _lora(self, name: str | None) -> LoRARequest | None:
        if name is None:
            return None
        if not self.loras:
            raise RequestError(f"lora_name: {name!r}: LoRA is not enabled for model {self.name}")
        if name not in self.loras:
            raise RequestError(f"lora_name: unknown adapter {name!r}; loaded: {', '.join(self.loras)}")
        return self.loras[name]

    def _response(self, step: Step, wanted: frozenset[str]) -> Any:
        tensors = [pb_utils.Tensor(name, array) for name, array in output_arrays(step, wanted).items()]
        return pb_utils.InferenceResponse(output_tensors=tensors)

    async def _generate(self, req: GenerateRequest, lora: LoRARequest | None, sender: Any) -> None:
        request_id = uuid.uuid4().hex
        try:
            params = SamplingParams(**req.sampling)
        except (TypeError, ValueError) as exc:
            sender.send(_error(f"sampling_parameters: {exc}"), flags=FINAL)
            return
        # Deltas let one loop serve both modes; the engine sends one per step.
        params.output_kind = RequestOutputKind.DELTA
        usage = _Usage(self.metrics, n=params.n)
        cancel_checked_at = usage.start
        text: list[str] = []
        logprobs: list[dict[str, dict[str, Any]]] = []
        try:
            async for output in self.engine.generate(req.prompt, params, request_id, lora_request=lora):
                now = time.monotonic()
                if now - cancel_checked_at >= CANCEL_CHECK_SECONDS:
                    # is_cancelled() is a round trip to the server: ask a few times a second, not per token.
                    cancel_checked_at = now
                    if sender.is_cancelled():
                        await self.engine.abort(request_id)
                        usage.record(finished=False)
                        sender.send(_error("request cancelled", pb_utils.TritonError.CANCELLED), flags=FINAL)
                        return
                completion = output.outputs[0]
                new = len(completion.token_ids)
                usage.step(now, len(output.prompt_token_ids or []), new)
                step_logprobs = _logprobs_json(completion.logprobs)
                if output.finished:
                    # Before the final response, so a client that reads metrics right after sees them.
                    usage.record(finished=True)
                if req.stream:
                    step = Step(
                        completion.text,
                        completion.finish_reason,
                        completion.cumulative_logprob,
                        step_logprobs,
                        usage.prompt,
                        new,
                    )
                    sender.send(self._response(step, req.outputs), flags=FINAL if output.finished else 0)
                else:
                    text.append(completion.text)
                    logprobs.extend(step_logprobs or [])
                    if output.finished:
                        answer = "".join(text)
                        if not req.exclude_input_in_output:
                            answer = req.prompt + answer
                        step = Step(
                            answer,
                            completion.finish_reason,
                            completion.cumulative_logprob,
                            logprobs if step_logprobs is not None else None,
                            usage.prompt,
                            usage.generated,
                        )
                        sender.send(self._response(step, req.outputs), flags=FINAL)
        except Exception as exc:  # one request's failure must not take the model down
            pb_utils.Logger.log_error(f"vllm backend: request {request_id} failed: {exc!r}")
            await self.engine.abort(request_id)
            usage.record(finished=False)
            sender.send(_error(f"generation failed: {exc}"), flags=FINAL)
        finally:
            usage.record(finished=False)  # no-op when already recorded

    # --- shutdown ------------------------------------------------------------------------------

    def finalize(self) -> None:
        pending = list(self.inflight)
        if pending:
            pb_utils.Logger.log_info(f"vllm backend: draining {len(pending)} request(s)")
            concurrent.futures.wait(pending, timeout=DRAIN_SECONDS)
        self.engine.shutdown()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        pb_utils.Logger.log_info(f"vllm backend: {self.name} v{self.version} stopped")
