"""The backend's pure request and response handling (runs without Triton or vLLM)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tritonfleet.backend.autocomplete import missing_io
from tritonfleet.backend.request import (
    STREAM_WITH_PROMPT,
    RequestError,
    build_request,
    parse_sampling_parameters,
)
from tritonfleet.backend.responses import NOT_FINISHED, Sequence, Step, output_arrays
from tritonfleet.backend.server import parameter
from tritonfleet.serving.contract import INPUTS, OPTIONAL_OUTPUTS, OUTPUTS

SAMPLING_KEYS = frozenset({"temperature", "max_tokens", "top_p", "n", "logprobs"})


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
        ('{"max_tokens": "many"}', r"sampling_parameters: max_tokens: 'many' is not a finite number"),
        ('{"temperature": "nan"}', r"sampling_parameters: temperature: 'nan' is not a finite number"),
        ('{"temperature": NaN}', r"sampling_parameters: malformed JSON: NaN is not a number"),
        ('{"top_p": 1e999}', r"sampling_parameters: top_p: inf is not a finite number"),
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


def test_request_parameters_carry_sampling_values_and_the_input_wins():
    # NVIDIA's README sends sampling values as request parameters, beside keys that are not sampling
    # values at all (`stream`, Triton's own `triton_enable_empty_final_response`): those are ignored.
    params, lora = parse_sampling_parameters(
        '{"max_tokens": 2}',
        '{"temperature": 0, "max_tokens": 9, "stream": false, "triton_enable_empty_final_response": true}',
        SAMPLING_KEYS,
    )
    assert (params, lora) == ({"temperature": 0, "max_tokens": 2}, None)
    assert parse_sampling_parameters(None, '{"lora_name": "sql", "top_p": "0.5"}', SAMPLING_KEYS) == (
        {"top_p": 0.5},
        "sql",
    )


def test_malformed_request_parameters_are_refused():
    with pytest.raises(RequestError, match="parameters: must be a JSON object, got list"):
        parse_sampling_parameters(None, "[1]", SAMPLING_KEYS)


def test_streaming_with_the_prompt_is_refused_in_nvidias_words():
    with pytest.raises(RequestError) as refused:
        build_request("hi", None, {"stream": True, "exclude_input_in_output": False}, OPTIONAL_OUTPUTS)
    assert str(refused.value) == STREAM_WITH_PROMPT
    streamed = build_request("hi", None, {"stream": True}, OPTIONAL_OUTPUTS)
    assert streamed.exclude_input_in_output  # a stream never carries the prompt
    assert not build_request("hi", None, {}, OPTIONAL_OUTPUTS).exclude_input_in_output


def test_logprobs_asked_by_the_backend_alone_are_not_returned():
    own = build_request("hi", None, {"return_logprobs": True}, OPTIONAL_OUTPUTS)
    assert own.sampling["logprobs"] == 0 and not own.client_logprobs
    asked = build_request("hi", '{"logprobs": 0}', {"return_logprobs": True}, OPTIONAL_OUTPUTS)
    assert asked.client_logprobs


def test_a_prompt_that_is_not_utf8_is_refused():
    with pytest.raises(RequestError, match=r"text_input: not UTF-8 text \(byte 1\)"):
        build_request(b"a\xff", None, {}, OPTIONAL_OUTPUTS)


def test_missing_prompt_is_refused():
    with pytest.raises(RequestError, match="text_input: missing"):
        build_request(None, None, {}, OPTIONAL_OUTPUTS)


LOGPROBS = [{"7": {"logprob": -1.5, "rank": 1, "decoded_token": "x"}}]


def test_output_arrays_carry_the_contract_types():
    step = Step((Sequence("text", "length", -1.5, LOGPROBS, 2),), 5)
    arrays = output_arrays(step, frozenset(OPTIONAL_OUTPUTS.values()))
    assert set(arrays) == set(OUTPUTS)
    numpy_types = {"TYPE_STRING": np.object_, "TYPE_FP32": np.float32, "TYPE_UINT32": np.uint32}
    for name, array in arrays.items():
        assert array.shape == (1,)
        assert array.dtype == np.dtype(numpy_types[OUTPUTS[name]])
    assert arrays["text_output"][0] == b"text"
    assert json.loads(arrays["logprobs"][0]) == LOGPROBS
    assert (arrays["num_input_tokens"][0], arrays["num_output_tokens"][0]) == (5, 2)


def test_n_sequences_give_n_elements_in_order():
    step = Step((Sequence("a", "stop", -1.0, None, 1), Sequence("bc", None, -2.0, None, 2)), 3)
    arrays = output_arrays(step, frozenset(OPTIONAL_OUTPUTS.values()))
    assert list(arrays["text_output"]) == [b"a", b"bc"]
    assert list(arrays["finish_reason"]) == [b"stop", NOT_FINISHED.encode()]
    assert list(arrays["num_output_tokens"]) == [1, 2]
    assert list(arrays["logprobs"]) == [b"null", b"null"]
    assert arrays["num_input_tokens"].shape == (1,)


def test_only_text_output_unless_asked():
    arrays = output_arrays(Step((Sequence("a", None, None, None, 1),), 1), frozenset())
    assert list(arrays) == ["text_output"]


def test_unfinished_and_unknown_values():
    arrays = output_arrays(
        Step((Sequence("a", None, None, None, 1),), 1), frozenset({"finish_reason", "cumulative_logprob"})
    )
    assert arrays["finish_reason"][0] == b"None"
    assert math.isnan(arrays["cumulative_logprob"][0])


# --- the server around the backend -----------------------------------------------------------


def test_config_parameters_are_read_as_nvidia_reads_them():
    config = {"parameters": {"ENABLE_VLLM_HEALTH_CHECK": {"string_value": " True "}, "X": "odd"}}
    assert parameter(config, "ENABLE_VLLM_HEALTH_CHECK") == "true"
    assert parameter(config, "X") is None
    assert parameter({}, "REPORT_CUSTOM_METRICS") is None


def test_auto_complete_adds_only_what_the_config_lacks():
    inputs, outputs = missing_io({"input": [{"name": "text_input"}], "output": []})
    assert [entry["name"] for entry in inputs] == [name for name in INPUTS if name != "text_input"]
    assert all(entry["optional"] and entry["dims"] == [1] for entry in inputs)
    assert [entry["name"] for entry in outputs] == list(OUTPUTS)
    assert all(entry["dims"] == [-1] for entry in outputs)
    required = missing_io({})[0][0]
    assert required == {"name": "text_input", "data_type": "TYPE_STRING", "dims": [1], "optional": False}
