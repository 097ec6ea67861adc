"""The performance gate's workload: which runs a Workload means, and the tools' exact command lines."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import pytest
from pydantic import ValidationError

from tritonfleet.perf.workload import (
    Bucket,
    Workload,
    aiperf_command,
    genai_perf_command,
    runs,
    triton_template,
)


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_a_workload_expands_bucket_then_variant_then_concurrency():
    workload = Workload(
        buckets=(Bucket(input_tokens=128, output_tokens=32), Bucket(input_tokens=1024, output_tokens=8)),
        concurrency=(16, 1, 4, 4),
        prefix_tokens=256,
        requests_per_concurrency=2,
        min_requests=8,
    )
    planned = runs(workload)
    assert [r.name for r in planned] == [
        "in128-out32-plain-c1", "in128-out32-plain-c4", "in128-out32-plain-c16",
        "in128-out32-prefix-c1", "in128-out32-prefix-c4", "in128-out32-prefix-c16",
        "in1024-out8-plain-c1", "in1024-out8-plain-c4", "in1024-out8-plain-c16",
        "in1024-out8-prefix-c1", "in1024-out8-prefix-c4", "in1024-out8-prefix-c16",
    ]  # fmt: skip
    assert [r.requests for r in planned[:3]] == [8, 8, 32]


def test_no_prefix_tokens_runs_the_plain_variant_only():
    assert {r.variant for r in runs(Workload(prefix_tokens=0))} == {"plain"}


@pytest.mark.parametrize(
    "fields",
    [
        {"concurrency": ()},
        {"concurrency": (0,)},
        {"concurrency": (4, 5000)},
        {"buckets": ()},
        {"buckets": ({"input_tokens": 0, "output_tokens": 4},)},
        {"tool": "locust"},
        {"seed": -1},
        {"run_timeout_s": 0},
        {"requests": 10},
    ],
)
def test_a_bad_workload_is_refused(fields: dict):
    with pytest.raises(ValidationError):
        Workload.model_validate(fields)


def test_the_aiperf_command_targets_triton_generate_stream_with_fixed_lengths(tmp_path: Path):
    workload = Workload(seed=7, warmup_requests=3, prefix_tokens=64)
    run = runs(workload)[-1]  # prefix, concurrency 16
    argv = aiperf_command(
        run, workload, model="tiny-llama", http_url="http://10.0.0.5:8000", tokenizer=tmp_path / "tok",
        template=tmp_path / "triton.json", out=tmp_path / run.name,
    )  # fmt: skip
    assert argv[:2] == ["aiperf", "profile"]
    assert flag(argv, "--url") == "http://10.0.0.5:8000"
    assert (flag(argv, "--endpoint-type"), flag(argv, "--endpoint")) == (
        "template",
        "/v2/models/tiny-llama/generate_stream",
    )
    extra = [argv[i + 1] for i, a in enumerate(argv) if a == "--extra-inputs"]
    assert extra == [f"payload_template:{tmp_path / 'triton.json'}", "response_field:text_output"]
    assert (flag(argv, "--concurrency"), flag(argv, "--request-count")) == ("16", "32")
    assert (flag(argv, "--warmup-request-count"), flag(argv, "--random-seed")) == ("3", "7")
    lengths = [flag(argv, name) for name in ("--isl", "--isl-stddev", "--osl", "--osl-stddev")]
    assert lengths == ["128", "0", "32", "0"]
    assert (flag(argv, "--num-prefix-prompts"), flag(argv, "--prefix-prompt-length")) == ("1", "64")
    assert "--streaming" in argv and "--no-server-metrics" in argv and flag(argv, "--ui-type") == "none"
    assert flag(argv, "--artifact-dir") == str(tmp_path / "in128-out32-prefix-c16")


def test_the_genai_perf_command_targets_triton_grpc_with_the_vllm_backend(tmp_path: Path):
    workload = Workload(prefix_tokens=0)
    run = runs(workload)[0]
    argv = genai_perf_command(
        run, workload, model="tiny-llama", grpc_url="10.0.0.5:8001", tokenizer=tmp_path / "tok", out=tmp_path
    )
    assert argv[:2] == ["genai-perf", "profile"]
    assert (flag(argv, "--endpoint-type"), flag(argv, "--backend"), flag(argv, "--url")) == (
        "kserve",
        "vllm",
        "10.0.0.5:8001",
    )
    assert flag(argv, "--synthetic-input-tokens-mean") == "128" and flag(argv, "--output-tokens-mean") == "32"
    assert "--output-tokens-mean-deterministic" in argv and "--num-prefix-prompts" not in argv
    assert (flag(argv, "--concurrency"), flag(argv, "--request-count")) == ("1", "8")


def test_the_triton_template_renders_to_the_request_our_backend_takes():
    # As AIPerf renders it: Jinja with autoescape on, so every value goes through tojson.
    template = jinja2.Environment(autoescape=True).from_string(triton_template())
    prompt = 'say "<hi>" & \\ bye'
    body = json.loads(template.render(text=prompt, stream=True, max_tokens=16))
    assert body == {
        "text_input": prompt,
        "stream": True,
        "exclude_input_in_output": True,
        "parameters": {"max_tokens": 16, "min_tokens": 16, "ignore_eos": True},
    }
