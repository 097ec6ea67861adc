"""Our vllm backend behaves as NVIDIA documents its own (README, docs/additional_outputs.md,
docs/health_check.md), on the live CPU stack and on a second server for what needs other configs.

Written from that contract; where the contract is silent and NVIDIA's CI pins a wording, the same
wording is used so that clients that match on it keep working.
"""

from __future__ import annotations

import itertools
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tritonfleet.serving import triton
from tritonfleet.serving.targets import Endpoint

from cpu_stack import GREEDY, MODEL, PROMPTS, Stack, extra_server, signal_process

pytestmark = pytest.mark.integration
TIMEOUT = 120


def post(endpoint: Endpoint, model: str, body: dict, route: str = "generate") -> requests.Response:
    return requests.post(f"{endpoint.http_url}/v2/models/{model}/{route}", json=body, timeout=TIMEOUT)


def events(endpoint: Endpoint, model: str, body: dict) -> list[dict]:
    response = post(endpoint, model, {**body, "stream": True}, "generate_stream")
    assert response.status_code == 200, response.text
    return [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]


# --- the live stack ------------------------------------------------------------------------------


def test_sampling_values_sent_as_request_parameters_are_used(stack: Stack):
    # The README's /generate example puts them in "parameters", beside a key that is not one (stream).
    readme = {"text_input": PROMPTS[0], "parameters": {"stream": False, "temperature": 0, "max_tokens": 5}}
    by_parameters = post(stack.endpoint, MODEL, {**readme, "return_num_output_tokens": True}).json()
    by_input = triton.generate(
        stack.endpoint, MODEL, PROMPTS[0], {"temperature": 0, "max_tokens": 5}, TIMEOUT
    )
    assert by_parameters["num_output_tokens"] == 5
    assert by_parameters["text_output"] == by_input["text_output"]


def test_n_sequences_come_back_as_n_elements(stack: Stack):
    sampling = {"n": 2, "temperature": 1.0, "seed": 7, "max_tokens": 6, "ignore_eos": True}
    body = {
        "text_input": PROMPTS[1],
        "sampling_parameters": json.dumps(sampling),
        "exclude_input_in_output": True,
    }
    whole = post(stack.endpoint, MODEL, {**body, "return_num_output_tokens": True}).json()
    assert len(whole["text_output"]) == 2 and all(whole["text_output"])
    assert whole["num_output_tokens"] == [6, 6]
    streamed = events(
        stack.endpoint, MODEL, {k: v for k, v in body.items() if k != "exclude_input_in_output"}
    )
    data = [event for event in streamed if "text_output" in event]
    assert all(len(event["text_output"]) == 2 for event in data), data
    assert ["".join(event["text_output"][i] for event in data) for i in range(2)] == whole["text_output"]


def test_structured_outputs_constrain_the_answer(stack: Stack):
    sampling = {"max_tokens": 8, "temperature": 1.0, "structured_outputs": {"choice": ["yes", "no"]}}
    for seed in range(3):
        body = {
            "text_input": "Is it raining?",
            "sampling_parameters": json.dumps({**sampling, "seed": seed}),
            "exclude_input_in_output": True,
        }
        response = post(stack.endpoint, MODEL, body)
        assert response.status_code == 200, response.text
        assert response.json()["text_output"] in ("yes", "no")


def test_a_stream_says_none_until_it_finishes_and_null_logprobs_unless_asked(stack: Stack):
    body = {
        "text_input": PROMPTS[0],
        "sampling_parameters": json.dumps(GREEDY),
        "return_finish_reason": True,
        "return_logprobs": True,
        "return_cumulative_logprob": True,
    }
    data = [event for event in events(stack.endpoint, MODEL, body) if "text_output" in event]
    assert len(data) > 1
    assert [event["finish_reason"] for event in data] == ["None"] * (len(data) - 1) + ["length"]
    assert all(json.loads(event["logprobs"]) is None for event in data)
    cumulative = [event["cumulative_logprob"] for event in data]
    assert all(a > b for a, b in itertools.pairwise(cumulative))  # it accumulates
    asked = {**body, "sampling_parameters": json.dumps({**GREEDY, "logprobs": 1})}
    first = next(event for event in events(stack.endpoint, MODEL, asked) if "text_output" in event)
    assert len(json.loads(first["logprobs"])) == 1


def test_streaming_with_the_prompt_is_refused(stack: Stack):
    body = {"text_input": "hi", "stream": True, "exclude_input_in_output": False}
    response = post(stack.endpoint, MODEL, body, "generate_stream")
    message = json.loads(response.text.removeprefix("data: "))["error"]
    assert (
        message
        == "Error generating stream: When streaming, `exclude_input_in_output` = False is not allowed."
    )


def test_time_per_output_token_is_observed_for_every_token_after_the_first(stack: Stack):
    def count() -> float:
        samples = triton.model_samples(triton.scrape(stack.endpoint, TIMEOUT), MODEL, "1")
        return samples["vllm:time_per_output_token_seconds_count"]

    before = count()
    triton.generate(stack.endpoint, MODEL, PROMPTS[2], GREEDY, TIMEOUT)
    assert count() - before == GREEDY["max_tokens"] - 1


def test_lora_on_a_model_without_it_is_refused_in_nvidias_words(stack: Stack):
    body = {"text_input": "hi", "sampling_parameters": json.dumps({"lora_name": "sheep"})}
    assert post(stack.endpoint, MODEL, body).json()["error"] == "LoRA feature is not enabled."


# --- a second server: configs the stack does not use ---------------------------------------------

SAMPLE = "nvidia-sample"  # only the backend and the instance group, as in NVIDIA's sample
STATS_OFF = "stats-off"  # vLLM's stats off in model.json, and enable_lora as the string "false"
HEALTH = "health-checked"  # ENABLE_VLLM_HEALTH_CHECK on, under explicit model control


def _copy(stack: Stack, root: Path, name: str) -> Path:
    folder = root / name
    shutil.copytree(stack.repository / MODEL, folder)
    config = folder / "config.pbtxt"
    config.write_text(config.read_text().replace(f'name: "{MODEL}"', f'name: "{name}"'))
    return folder


@pytest.fixture(scope="module")
def second(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    root = tmp_path_factory.mktemp("conformance") / "models"  # mktemp's own folder is 0700
    root.mkdir()
    sample = _copy(stack, root, SAMPLE)
    (sample / "config.pbtxt").write_text(
        'backend: "vllm"\ninstance_group [ { count: 1, kind: KIND_MODEL } ]\n'
    )
    stats_off = _copy(stack, root, STATS_OFF)
    engine = json.loads((stats_off / "1" / "model.json").read_text())
    (stats_off / "1" / "model.json").write_text(
        json.dumps({**engine, "disable_log_stats": True, "enable_lora": "false"})
    )
    health = _copy(stack, root, HEALTH)
    config = health / "config.pbtxt"
    config.write_text(
        config.read_text()
        + 'parameters { key: "ENABLE_VLLM_HEALTH_CHECK", value { string_value: "true" } }\n'
    )
    flags = ("--model-control-mode=explicit", "--load-model=*", "--strict-readiness=true")
    with extra_server("conformance", root, *flags) as endpoint:
        yield endpoint


def test_a_config_that_leaves_the_io_to_auto_complete_loads_and_serves(second: Endpoint):
    config = requests.get(f"{second.http_url}/v2/models/{SAMPLE}/config", timeout=10).json()
    assert config["model_transaction_policy"]["decoupled"] is True
    assert {entry["name"] for entry in config["input"]} >= {"text_input", "stream", "sampling_parameters"}
    assert post(second, SAMPLE, {"text_input": "hi", "parameters": {"max_tokens": 3}}).json()["text_output"]


def test_vllm_stats_off_in_model_json_turns_the_vllm_metrics_off(second: Endpoint):
    assert post(second, STATS_OFF, {"text_input": "hi", "parameters": {"max_tokens": 3}}).status_code == 200
    text = triton.scrape(second, TIMEOUT)
    assert not [
        line for line in text.splitlines() if line.startswith("vllm:") and f'model="{STATS_OFF}"' in line
    ]
    # The control: the model beside it, with vLLM's stats on, exports them on the same server.
    assert [line for line in text.splitlines() if line.startswith("vllm:") and f'model="{HEALTH}"' in line]


def test_enable_lora_false_as_a_string_means_no_lora(second: Endpoint):
    body = {"text_input": "hi", "sampling_parameters": json.dumps({"lora_name": "sheep"})}
    assert post(second, STATS_OFF, body).json()["error"] == "LoRA feature is not enabled."


def test_the_health_check_takes_a_model_with_a_dead_engine_out_of_service(second: Endpoint):
    assert signal_process("tritonfleet-smoke-conformance", "VLLM::EngineCore", "SIGKILL", f"/{HEALTH}/1/")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if requests.get(f"{second.http_url}/v2/models/{HEALTH}/ready", timeout=5).status_code != 200:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"{HEALTH} still ready 30 s after its engine died")
    index = requests.post(f"{second.http_url}/v2/repository/index", timeout=10).json()
    assert {entry["name"]: entry.get("state") for entry in index}[HEALTH] != "READY"
    # The server and its other models stay up: only the dead model left.
    assert requests.get(f"{second.http_url}/v2/health/live", timeout=5).status_code == 200
    assert post(second, SAMPLE, {"text_input": "hi", "parameters": {"max_tokens": 2}}).status_code == 200
    assert post(second, HEALTH, {"text_input": "hi"}).status_code != 200
