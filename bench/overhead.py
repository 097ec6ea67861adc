"""Triton + our vllm backend against vLLM's own OpenAI server: same engine, model, prompts and load.

`make bench-overhead` starts both servers from the CPU image and runs this. Runs alternate between
the two servers so that drift on the machine (other load, thermal) touches both alike. Every request
streams, so time to first token (TTFT) and inter-token latency (ITL) are measured the same way on
both sides: at the client, per server-sent event, each of which carries one token.

This is a benchmark, not a test: it prints figures and their ratio, and asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import pathlib
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests
from rich.console import Console
from rich.table import Table

from tritonfleet.console import console as wide_console
from tritonfleet.serving.readiness import wait_until_ok

PROMPTS = [
    f"{opening} {subject}"
    for opening in ("Once upon a time", "The report says that", "In the morning", "Write about")
    for subject in ("a small robot", "the old city", "the river and the bridge", "a quiet market")
]


@dataclass(frozen=True)
class Sample:
    ttft: float
    itls: list[float]
    tokens: int
    e2e: float


@dataclass(frozen=True)
class Run:
    server: str
    wall: float
    samples: list[Sample]

    @property
    def tokens_per_second(self) -> float:
        return sum(s.tokens for s in self.samples) / self.wall


def _sse_events(response: requests.Response):
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("data:") and line.strip() != "data: [DONE]":
            yield json.loads(line[len("data:") :])


def triton_request(url: str, model: str, prompt: str, max_tokens: int, timeout: float) -> Sample:
    sampling = {"temperature": 0, "max_tokens": max_tokens, "ignore_eos": True}
    body = {"text_input": prompt, "stream": True, "sampling_parameters": json.dumps(sampling)}
    return _timed(
        lambda: requests.post(
            f"{url}/v2/models/{model}/generate_stream", json=body, stream=True, timeout=timeout
        ),
        lambda event: event.get("text_output"),
    )


def vllm_request(url: str, model: str, prompt: str, max_tokens: int, timeout: float) -> Sample:
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0,
        "ignore_eos": True,
        "stream": True,
    }
    return _timed(
        lambda: requests.post(f"{url}/v1/completions", json=body, stream=True, timeout=timeout),
        lambda event: event["choices"][0]["text"] if event.get("choices") else None,
    )


def _timed(send, text_of) -> Sample:
    start = time.perf_counter()  # before the request: TTFT includes queueing and prefill
    stamps = []
    with send() as response:
        response.raise_for_status()
        for event in _sse_events(response):
            if "error" in event:
                raise RuntimeError(event["error"])
            if text_of(event) is not None:  # one event per token; others (usage, errors) are not
                stamps.append(time.perf_counter())
    if not stamps:
        raise RuntimeError("no tokens streamed")
    return Sample(
        ttft=stamps[0] - start,
        itls=[b - a for a, b in itertools.pairwise(stamps)],
        tokens=len(stamps),
        e2e=stamps[-1] - start,
    )


def run(server: str, send, concurrency: int, repeat: int) -> Run:
    prompts = PROMPTS * repeat
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        samples = list(pool.map(send, prompts))
    return Run(server, time.perf_counter() - start, samples)


def _ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def report(runs: list[Run], console: Console) -> None:
    by_server: dict[str, list[Run]] = {}
    for r in runs:
        by_server.setdefault(r.server, []).append(r)
    triton, vllm = by_server["triton"], by_server["vllm"]

    def figures(rs: list[Run]) -> dict[str, float]:
        samples = [s for r in rs for s in r.samples]
        return {
            "throughput (tokens/s, median of runs)": statistics.median(r.tokens_per_second for r in rs),
            "TTFT median (ms)": _ms([s.ttft for s in samples]),
            "TTFT p90 (ms)": statistics.quantiles([s.ttft for s in samples], n=10)[-1] * 1000,
            "ITL median (ms)": _ms([i for s in samples for i in s.itls]),
            "e2e median (ms)": _ms([s.e2e for s in samples]),
        }

    left, right = figures(triton), figures(vllm)
    table = Table(title=f"Triton + tritonfleet vllm backend vs vLLM OpenAI server ({len(triton)} runs each)")
    for column in ("metric", "triton", "vllm", "triton / vllm"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for metric in left:
        table.add_row(
            metric, f"{left[metric]:.2f}", f"{right[metric]:.2f}", f"{left[metric] / right[metric]:.3f}"
        )
    console.print(table)
    per_run = Table(title="per run (alternated)")
    for column in ("run", "server", "wall (s)", "tokens/s"):
        per_run.add_column(column, justify="right")
    for i, r in enumerate(runs, 1):
        per_run.add_row(str(i), r.server, f"{r.wall:.2f}", f"{r.tokens_per_second:.1f}")
    console.print(per_run)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triton", required=True, help="Triton HTTP URL, http://HOST:PORT")
    parser.add_argument("--vllm", required=True, help="vLLM OpenAI server URL")
    parser.add_argument("--model", default="tiny-llama", help="Triton model name")
    parser.add_argument(
        "--engine-json", required=True, type=pathlib.Path, help="the model.json both servers use"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (one run per server each)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=2, help="times the 16 prompts are sent per run")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    console = wide_console()
    # vLLM serves the model under its path unless told otherwise, as the backend's model.json gives it.
    served_model = json.loads(args.engine_json.read_text())["model"]

    wait_until_ok(f"{args.triton}/v2/models/{args.model}/ready", timeout=600)
    wait_until_ok(f"{args.vllm}/health", timeout=600)

    def to_triton(prompt: str) -> Sample:
        return triton_request(args.triton, args.model, prompt, args.max_tokens, args.timeout)

    def to_vllm(prompt: str) -> Sample:
        return vllm_request(args.vllm, served_model, prompt, args.max_tokens, args.timeout)

    # One warm-up run each (first-request compilation and caches), not counted.
    run("triton", to_triton, args.concurrency, 1)
    run("vllm", to_vllm, args.concurrency, 1)
    runs = []
    for round_no in range(args.rounds):
        order = [("triton", to_triton), ("vllm", to_vllm)]
        for server, send in order if round_no % 2 == 0 else order[::-1]:
            runs.append(run(server, send, args.concurrency, args.repeat))
            console.print(f"round {round_no + 1}: {server} {runs[-1].tokens_per_second:.1f} tokens/s")
    report(runs, console)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
