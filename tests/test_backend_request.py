"""The backend's pure request and response handling (runs without Triton or vLLM)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tritonfleet.backend.request import RequestError, build_request, parse_sampling_parameters
from tritonfleet.backend.responses import Step, output_arrays
from tritonfleet.serving.contract import OPTIONAL_OUTPUTS, OUTPUTS


def test_string_values_are_converted_as_clients_send_them():
    params, lora = parse_sampling_parameters(
        '{"temperature": "0", "max_tokens": "16", "top_p": 0.9, "ignore_eos": "true", "stop": ["\\n"]}'
    )
    assert params == {"temperature": 0.0, "max_tokens": 16, "top_p": 0.9, "ignore_eos": True, "stop": ["\n"]}
    assert lora is None


def test_lora_name_is_taken_out_of_the_sampling_parameters():
    params, lora = parse_sampling_parameters('{"lora_name": "sql", "max_tokens": 4}')
    assert (params, lora) == ({"max_tokens": 4}, "sql")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"max_tokens": 4', r"sampling_parameters: malformed JSON: Expecting ',' delimiter at column 17"),
        ("[1, 2]", r"sampling_parameters: must be a JSON object, got list"),
        ('{"max_tokens": "many"}', r"sampling_parameters: max_tokens: 'many' is not a number"),
        ('{"ignore_eos": "maybe"}', r"sampling_parameters: ignore_eos: 'maybe' is not true or false"),
        ('{"lora_name": 3}', r"sampling_parameters: lora_name must be a string"),
    ],
)
def test_bad_sampling_parameters_name_the_problem(text, message):
    with pytest.raises(RequestError, match=message):
        parse_sampling_parameters(text)


def test_empty_sampling_parameters_mean_vllm_defaults():
    assert parse_sampling_parameters(None) == ({}, None)
    assert parse_sampling_parameters("  ") == ({}, None)


def test_build_request_decodes_bytes_and_collects_flags():
    request = build_request(
        b"Hello \xe2\x9c\x93",
        b'{"max_tokens": 3}',
        {"stream": True, "exclude_input_in_output": True, "return_num_output_tokens": True},
        OPTIONAL_OUTPUTS,
    )
    assert request.prompt == "Hello \u2713"
    assert request.stream and request.exclude_input_in_output
    assert request.outputs == frozenset({"num_output_tokens"})
    assert request.sampling == {"max_tokens": 3}


def test_logprob_outputs_turn_on_vllm_logprobs():
    request = build_request("hi", None, {"return_cumulative_logprob": True}, OPTIONAL_OUTPUTS)
    assert request.sampling["logprobs"] == 0
    kept = build_request("hi", '{"logprobs": 3}', {"return_logprobs": True}, OPTIONAL_OUTPUTS)
    assert kept.sampling["logprobs"] == 3


def test_missing_prompt_is_refused():
    with pytest.raises(RequestError, match="text_input: missing"):
        build_request(None, None, {}, OPTIONAL_OUTPUTS)


def test_output_arrays_carry_the_contract_types():
    step = Step("text", "length", -1.5, [{"7": {"logprob": -1.5, "rank": 1, "decoded_token": "x"}}], 5, 2)
    arrays = output_arrays(step, frozenset(OPTIONAL_OUTPUTS.values()))
    assert set(arrays) == set(OUTPUTS)
    numpy_types = {"TYPE_STRING": np.object_, "TYPE_FP32": np.float32, "TYPE_UINT32": np.uint32}
    for name, array in arrays.items():
        assert array.shape == (1,)
        assert array.dtype == np.dtype(numpy_types[OUTPUTS[name]])
    assert arrays["text_output"][0] == b"text"
    assert json.loads(arrays["logprobs"][0]) == [{"7": {"logprob": -1.5, "rank": 1, "decoded_token": "x"}}]
    assert (arrays["num_input_tokens"][0], arrays["num_output_tokens"][0]) == (5, 2)


def test_only_text_output_unless_asked():
    arrays = output_arrays(Step("a", None, None, None, 1, 1), frozenset())
    assert list(arrays) == ["text_output"]


def test_unfinished_and_unknown_values():
    arrays = output_arrays(
        Step("a", None, None, None, 1, 1), frozenset({"finish_reason", "cumulative_logprob"})
    )
    assert arrays["finish_reason"][0] == b""
    assert math.isnan(arrays["cumulative_logprob"][0])
