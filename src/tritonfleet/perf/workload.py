"""What the performance gate sends: buckets of input and output lengths, a concurrency sweep, and a
prefix-heavy variant beside the plain one, each run with fixed seeds, a warm-up and a request count.

`runs` expands a Workload into the runs it means, in a fixed order (bucket, then variant, then
concurrency), each with a name that is also its artifact folder. `aiperf_command` and
`genai_perf_command` turn one run into the tool's argument list, against Triton's HTTP
`/generate_stream` (AIPerf, through a payload template) or its gRPC endpoint (GenAI-Perf, `kserve` with
the `vllm` backend). Both fix the output length, so that the client's and the server's token counts can
be compared: AIPerf through the template's min_tokens and ignore_eos, GenAI-Perf through
`--output-tokens-mean-deterministic`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from tritonfleet.limits import MAX_TOKENS
from tritonfleet.perf.results import Tool

Variant = Literal["plain", "prefix"]
MAX_CONCURRENCY = 4096
MAX_REQUESTS = 1_000_000


class Bucket(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    input_tokens: int = Field(ge=1, le=MAX_TOKENS)
    output_tokens: int = Field(ge=1, le=MAX_TOKENS)


class Workload(BaseModel):
    """One model's workload for the gate; the defaults are a small sweep that a CPU engine finishes."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    tool: Tool = "aiperf"
    buckets: tuple[Bucket, ...] = Field((Bucket(input_tokens=128, output_tokens=32),), min_length=1)
    concurrency: tuple[Annotated[int, Field(ge=1, le=MAX_CONCURRENCY)], ...] = Field((1, 4, 16), min_length=1)
    # A shared prefix of this many tokens on every prompt (a system prompt); 0 runs the plain variant only.
    prefix_tokens: int = Field(256, ge=0, le=MAX_TOKENS)
    # Requests per run: this many per unit of concurrency, and at least min_requests.
    requests_per_concurrency: int = Field(2, ge=1, le=MAX_REQUESTS)
    min_requests: int = Field(8, ge=1, le=MAX_REQUESTS)
    warmup_requests: int = Field(2, ge=0, le=MAX_REQUESTS)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    # A run that takes longer is stopped and fails the gate as "could not run".
    run_timeout_s: float = Field(600.0, gt=0, le=86_400)


@dataclass(frozen=True)
class Run:
    bucket: Bucket
    variant: Variant
    concurrency: int
    requests: int

    @property
    def name(self) -> str:
        return (
            f"in{self.bucket.input_tokens}-out{self.bucket.output_tokens}-{self.variant}-c{self.concurrency}"
        )


def runs(workload: Workload) -> list[Run]:
    variants: tuple[Variant, ...] = ("plain", "prefix") if workload.prefix_tokens else ("plain",)
    return [
        Run(bucket, variant, c, max(workload.min_requests, workload.requests_per_concurrency * c))
        for bucket in workload.buckets
        for variant in variants
        for c in sorted(set(workload.concurrency))
    ]


def triton_template() -> str:
    """AIPerf's payload for Triton's /generate_stream: the prompt as text_input, the output length fixed
    (min_tokens and ignore_eos), and the prompt left out of the streamed text, which AIPerf counts."""
    body = {
        "text_input": "{{ text|tojson }}",
        "stream": "{{ stream|tojson }}",
        "exclude_input_in_output": True,
        "parameters": {
            "max_tokens": "{{ max_tokens|tojson }}",
            "min_tokens": "{{ max_tokens|tojson }}",
            "ignore_eos": True,
        },
    }
    # The Jinja expressions must stand unquoted in the JSON AIPerf renders.
    return json.dumps(body).replace('"{{', "{{").replace('}}"', "}}") + "\n"


def _common(run: Run, workload: Workload) -> list[str]:
    return [
        "--streaming",
        *("--concurrency", str(run.concurrency)),
        *("--request-count", str(run.requests)),
        *("--warmup-request-count", str(workload.warmup_requests)),
        *("--random-seed", str(workload.seed)),
    ]


def _prefix(run: Run, workload: Workload) -> list[str]:
    if run.variant != "prefix":
        return []
    return ["--num-prefix-prompts", "1", "--prefix-prompt-length", str(workload.prefix_tokens)]


def aiperf_command(
    run: Run, workload: Workload, *, model: str, http_url: str, tokenizer: Path, template: Path, out: Path
) -> list[str]:
    """`aiperf profile` for RUN: HTTP_URL is Triton's http://HOST:PORT; TEMPLATE holds triton_template()."""
    return [
        *("aiperf", "profile", "--model", model, "--url", http_url),
        *("--endpoint-type", "template", "--endpoint", f"/v2/models/{model}/generate_stream"),
        # A file path: AIPerf splits an inline template at its commas.
        *("--extra-inputs", f"payload_template:{template}", "--extra-inputs", "response_field:text_output"),
        *("--tokenizer", str(tokenizer)),
        *_common(run, workload),
        *("--isl", str(run.bucket.input_tokens), "--isl-stddev", "0"),
        *("--osl", str(run.bucket.output_tokens), "--osl-stddev", "0"),
        *_prefix(run, workload),
        # No dashboard, and no scrape of <url>/metrics: Triton serves its metrics on a port of their own.
        *("--ui-type", "none", "--no-server-metrics", "--no-gpu-telemetry"),
        *("--artifact-dir", str(out)),
    ]


def genai_perf_command(
    run: Run, workload: Workload, *, model: str, grpc_url: str, tokenizer: Path, out: Path
) -> list[str]:
    """`genai-perf profile` for RUN: GRPC_URL is Triton's HOST:PORT for gRPC."""
    return [
        *("genai-perf", "profile", "--model", model, "--url", grpc_url),
        *("--endpoint-type", "kserve", "--backend", "vllm"),
        *("--tokenizer", str(tokenizer)),
        *_common(run, workload),
        *(
            "--synthetic-input-tokens-mean",
            str(run.bucket.input_tokens),
            "--synthetic-input-tokens-stddev",
            "0",
        ),
        *("--output-tokens-mean", str(run.bucket.output_tokens), "--output-tokens-stddev", "0"),
        "--output-tokens-mean-deterministic",
        *_prefix(run, workload),
        *("--artifact-dir", str(out)),
    ]
