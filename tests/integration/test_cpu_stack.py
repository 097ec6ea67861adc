"""The CPU reference stack end to end: compose, tritonserver, our vllm backend and a real vLLM engine.

The stack comes up once (`make up PROFILE=cpu`); test_stack_shutdown.py takes it down, last, and
checks nothing is left.
"""

from __future__ import annotations

import json
import queue
import shutil
import time
from pathlib import Path

import pytest
import requests
import tritonclient.grpc as grpcclient

from tritonfleet.serving import triton

from cpu_stack import GREEDY, MODEL, PROMPTS, Stack, compose_run, container_health

pytestmark = pytest.mark.integration
TIMEOUT = 120  # seconds for one generation on two CPU cores, far above the few seconds it takes


# --- clients (tritonfleet.triton, which the smoke gate uses too) ----------------------------


def generate(stack: Stack, prompt: str, sampling: dict, **flags: bool) -> dict:
    return triton.generate(stack.endpoint, MODEL, prompt, sampling, TIMEOUT, **flags)


def vllm_counters(stack: Stack) -> dict[str, float]:
    samples = triton.model_samples(triton.scrape(stack.endpoint, TIMEOUT), MODEL, "1")
    return {name: value for name, value in samples.items() if name.startswith("vllm:")}


def is_ready(stack: Stack) -> bool:
    return requests.get(f"{stack.http}/v2/models/{MODEL}/ready", timeout=10).status_code == 200


# --- the server --------------------------------------------------------------------------------


def test_stack_is_ready_and_healthy(stack: Stack):
    assert requests.get(f"{stack.http}/v2/health/ready", timeout=10).status_code == 200
    assert is_ready(stack)
    assert container_health("triton-cpu") == "healthy"


def test_model_is_served_by_our_vllm_backend_as_decoupled(stack: Stack):
    config = requests.get(f"{stack.http}/v2/models/{MODEL}/config", timeout=10).json()
    assert config["backend"] == "vllm"
    assert config["model_transaction_policy"]["decoupled"] is True


# --- generation --------------------------------------------------------------------------------


def test_generate_returns_text_with_the_prompt_prepended(stack: Stack):
    text = generate(stack, PROMPTS[0], GREEDY)["text_output"]
    assert text.startswith(PROMPTS[0])
    assert len(text) > len(PROMPTS[0])


def test_exclude_input_in_output_drops_the_prompt(stack: Stack):
    with_prompt = generate(stack, PROMPTS[0], GREEDY)["text_output"]
    without = generate(stack, PROMPTS[0], GREEDY, exclude_input_in_output=True)["text_output"]
    assert with_prompt == PROMPTS[0] + without
    assert not without.startswith(PROMPTS[0])


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_output_equals_vllm_offline_token_for_token(stack: Stack, reference: dict, prompt: str):
    # logprobs 0: the sampled token's own; without the key the logprobs output is null (NVIDIA's contract).
    body = generate(
        stack,
        prompt,
        {**GREEDY, "logprobs": 0},
        exclude_input_in_output=True,
        return_logprobs=True,
        return_num_input_tokens=True,
    )
    token_ids = [int(next(iter(position))) for position in json.loads(body["logprobs"])]
    assert token_ids == reference[prompt]["token_ids"]
    assert body["text_output"] == reference[prompt]["text"]
    assert body["num_input_tokens"] == len(reference[prompt]["prompt_token_ids"])


def test_num_output_tokens_is_exact(stack: Stack):
    body = generate(stack, PROMPTS[1], GREEDY, return_num_output_tokens=True, return_finish_reason=True)
    assert body["num_output_tokens"] == GREEDY["max_tokens"]
    assert body["finish_reason"] == "length"


def test_generate_stream_concatenates_to_the_non_streaming_text(stack: Stack):
    events = triton.generate_stream(
        stack.endpoint, MODEL, PROMPTS[1], GREEDY, TIMEOUT, return_num_output_tokens=True
    )
    assert all("error" not in event for event in events), events
    assert len(events) > 1  # it really streamed
    streamed = "".join(event["text_output"] for event in events)
    whole = generate(stack, PROMPTS[1], GREEDY, exclude_input_in_output=True)["text_output"]
    assert streamed == whole
    assert sum(event["num_output_tokens"] for event in events) == GREEDY["max_tokens"]


def test_grpc_stream_returns_the_same_text(stack: Stack):
    pieces = triton.grpc_stream(stack.endpoint, MODEL, PROMPTS[2], GREEDY, TIMEOUT).texts
    whole = generate(stack, PROMPTS[2], GREEDY, exclude_input_in_output=True)["text_output"]
    assert len(pieces) > 1
    assert "".join(pieces) == whole


def test_cancelling_a_grpc_stream_stops_generation(stack: Stack):
    # The longest generation the model allows, so that it is still running when the client cancels.
    # 8 sequences of 480 tokens: several seconds, where one sequence can end before the cancel lands.
    longest = {"temperature": 1.0, "max_tokens": 480, "ignore_eos": True, "n": 8}
    before = vllm_counters(stack)
    results: queue.Queue = queue.Queue()
    client = grpcclient.InferenceServerClient(stack.grpc)
    client.start_stream(callback=lambda result, error: results.put((result, error)), stream_timeout=TIMEOUT)
    client.async_stream_infer(MODEL, triton.grpc_inputs(PROMPTS[0], longest), request_id="to-cancel")
    first, error = results.get(timeout=TIMEOUT)
    assert error is None and first.as_numpy("text_output") is not None
    client.stop_stream(cancel_requests=True)
    client.close()
    # The engine aborts the request, and its tokens are counted once it ends: the counter moves,
    # then settles well short of max_tokens.
    previous, settled = None, None
    for _ in range(30):
        generated = (
            vllm_counters(stack)["vllm:generation_tokens_total"] - before["vllm:generation_tokens_total"]
        )
        if generated and generated == previous:
            settled = generated
            break
        previous = generated
        time.sleep(1)
    assert settled is not None, "generation did not stop after the cancel"
    assert 0 < settled < longest["max_tokens"] * longest["n"], f"{settled} tokens generated after the cancel"
    assert is_ready(stack)
    assert generate(stack, PROMPTS[0], GREEDY)["text_output"]


# --- bad requests ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sampling_text", "message"),
    [
        ('{"max_tokens": 4', "sampling_parameters: malformed JSON"),
        ('{"max_tokens": 4, "frobnicate": 1}', "frobnicate"),
        ('{"max_tokens": 4, "lora_name": "no-such-adapter"}', "LoRA feature is not enabled."),
    ],
    ids=["malformed-json", "unknown-key", "unknown-lora"],
)
def test_bad_request_gets_an_error_and_the_server_stays_ready(stack: Stack, sampling_text: str, message: str):
    body = {"text_input": PROMPTS[0], "sampling_parameters": sampling_text}
    response = triton.post_generate_raw(stack.endpoint, MODEL, body, TIMEOUT)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert is_ready(stack)
    assert generate(stack, PROMPTS[0], GREEDY)["text_output"]


# --- metrics -----------------------------------------------------------------------------------


def test_vllm_counters_rise_by_exactly_the_tokens_generated(stack: Stack, reference: dict):
    before = vllm_counters(stack)
    body = generate(stack, PROMPTS[2], GREEDY, return_num_input_tokens=True, return_num_output_tokens=True)
    after = vllm_counters(stack)
    assert (
        after["vllm:generation_tokens_total"] - before["vllm:generation_tokens_total"] == GREEDY["max_tokens"]
    )
    assert body["num_output_tokens"] == GREEDY["max_tokens"]
    prompt_tokens = len(reference[PROMPTS[2]]["prompt_token_ids"])
    assert after["vllm:prompt_tokens_total"] - before["vllm:prompt_tokens_total"] == prompt_tokens
    assert after["vllm:request_generation_tokens_count"] - before["vllm:request_generation_tokens_count"] == 1
    assert after["vllm:request_generation_tokens_sum"] - before["vllm:request_generation_tokens_sum"] == 24
    # The gauges the official backend lacks are exported too.
    for gauge in ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"):
        assert gauge in after


# --- a model that cannot load ------------------------------------------------------------------


def test_unknown_model_json_key_fails_the_load_naming_it(stack: Stack, tmp_path: Path):
    repository = tmp_path / "repo"
    shutil.copytree(stack.repository, repository)
    engine_file = repository / MODEL / "1" / "model.json"
    engine_args = json.loads(engine_file.read_text())
    engine_args["frobnicate_the_cache"] = True
    engine_file.write_text(json.dumps(engine_args))
    command = ["tritonserver", "--model-repository=/bad-models", "--model-control-mode=none",
               "--strict-readiness=true", "--disable-auto-complete-config"]  # fmt: skip
    done = compose_run(command, {repository: "/bad-models"}, timeout=300)
    log = done.stdout + done.stderr
    assert done.returncode != 0
    assert "unknown engine argument(s) frobnicate_the_cache" in log
    assert "failed to load 'tiny-llama'" in log
