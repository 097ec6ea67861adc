"""The CPU stack under load, and through a restart under load: what a client sees, and what the server counts.

`make bench-load` runs this against the local stack (`make up PROFILE=cpu`). Two phases:

1. **steady**: `--requests` generate calls at `--concurrency` (closed loop, one keep-alive connection
   per worker). The table gives errors, p50/p99 latency, and the tokens the clients received against
   the rise of the `vllm:generation_tokens_total` and `nv_inference_request_*` counters.
2. **restart**: `--restart-requests` calls sent open loop at `--rate` per second (each on a pooled
   keep-alive connection, as a load balancer's would be) while `docker restart` runs on the stack's
   container `--restart-at` seconds in. The table splits failures by how they failed and gives how long the
   stack took to be ready again.

`--label` names the column, so that runs on two images (`make bench-load` before and after a change)
can be put side by side. This is a benchmark: it prints figures and asserts
nothing beyond the stack coming up.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests
from rich.table import Table

from tritonfleet.console import console
from tritonfleet.serving import triton
from tritonfleet.serving.readiness import wait_until_ok
from tritonfleet.serving.targets import Endpoint, parse_target

PROMPTS = [f"Request {i}: tell me about the river and the bridge" for i in range(64)]
READY_TIMEOUT = 600.0


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    tokens: int = 0
    wall: float = 0.0

    @property
    def sent(self) -> int:
        return len(self.latencies) + sum(self.failures.values())


def one_call(session: requests.Session, url: str, body: dict, timeout: float, outcome: Outcome) -> None:
    start = time.perf_counter()
    try:
        response = session.post(url, data=json.dumps(body), timeout=timeout)
    except requests.ConnectionError:
        outcome.failures["connection refused/reset"] += 1
        return
    except requests.Timeout:
        outcome.failures[f"no answer in {timeout:.0f} s"] += 1
        return
    if response.status_code != 200:
        outcome.failures[f"HTTP {response.status_code}"] += 1
        return
    outcome.latencies.append(time.perf_counter() - start)
    outcome.tokens += int(response.json().get("num_output_tokens", 0))


def body(i: int, max_tokens: int) -> dict:
    sampling = {"temperature": 0, "max_tokens": max_tokens, "ignore_eos": True}
    return {
        "text_input": PROMPTS[i % len(PROMPTS)],
        "sampling_parameters": json.dumps(sampling),
        "return_num_output_tokens": True,
    }


def counters(endpoint: Endpoint, model: str) -> dict[str, float]:
    """The model's counters, with Triton's request counters summed over their `reason` labels."""
    series = triton.model_series(triton.scrape(endpoint, 30), model, "1")
    totals = {name: value for name, value in series.items() if "{" not in name}
    for name in ("nv_inference_request_success_total", "nv_inference_request_failure_total"):
        totals[name] = sum(value for key, value in series.items() if key.split("{")[0] == name)
    return totals


def caller(url: str, max_tokens: int, timeout: float, outcome: Outcome):
    """A function that sends request i on its thread's own keep-alive session and adds to `outcome`."""
    local = threading.local()
    lock = threading.Lock()

    def call(i: int) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        result = Outcome()
        one_call(session, url, body(i, max_tokens), timeout, result)
        with lock:
            outcome.latencies += result.latencies
            outcome.failures.update(result.failures)
            outcome.tokens += result.tokens

    return call


def steady(endpoint: Endpoint, model: str, n: int, concurrency: int, max_tokens: int) -> tuple[Outcome, dict]:
    url = f"{endpoint.http_url}/v2/models/{model}/generate"
    before = counters(endpoint, model)
    outcome = Outcome()
    call = caller(url, max_tokens, 120, outcome)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(call, range(n)))
    outcome.wall = time.perf_counter() - start
    after = counters(endpoint, model)
    return outcome, {name: after.get(name, 0) - before.get(name, 0) for name in after}


def restart(
    endpoint: Endpoint, model: str, container: str, n: int, rate: float, max_tokens: int, at: float
) -> tuple[Outcome, dict[str, float]]:
    url = f"{endpoint.http_url}/v2/models/{model}/generate"
    outcome = Outcome()
    call = caller(url, max_tokens, 30, outcome)
    timings = {"stop": 0.0, "start": 0.0}

    def restart_midway() -> None:
        time.sleep(at)
        # `docker restart` is a stop and a start: timed apart, the stop shows how long the old server
        # took to finish and exit, the start how long the new one took to be ready.
        began = time.perf_counter()
        subprocess.run(["docker", "stop", container], capture_output=True, check=True)
        stopped = time.perf_counter()
        subprocess.run(["docker", "start", container], capture_output=True, check=True)
        wait_until_ok(f"{endpoint.http_url}/v2/health/ready", READY_TIMEOUT)
        timings["stop"], timings["start"] = stopped - began, time.perf_counter() - stopped

    restarter = threading.Thread(target=restart_midway)
    start = time.perf_counter()
    restarter.start()
    with ThreadPoolExecutor(64) as pool:
        for i in range(n):
            pool.submit(call, i)
            time.sleep(max(0.0, start + (i + 1) / rate - time.perf_counter()))
    restarter.join()
    outcome.wall = time.perf_counter() - start
    return outcome, timings


def pct(values: list[float], q: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="http://HOST:PORT?grpc=PORT&metrics=PORT")
    parser.add_argument("--model", default="tiny-llama")
    parser.add_argument("--container", required=True, help="the stack's container, for docker restart")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--restart-requests", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second in the restart phase")
    parser.add_argument("--restart-at", type=float, default=10.0, help="seconds into the restart phase")
    parser.add_argument("--label", default="current", help="name of this run's column")
    args = parser.parse_args()
    endpoint = parse_target(args.url)
    wait_until_ok(f"{endpoint.http_url}/v2/health/ready", READY_TIMEOUT)
    load, rise = steady(endpoint, args.model, args.requests, args.concurrency, args.max_tokens)
    console().print(f"steady phase done in {load.wall:.1f} s", style="dim")
    through, timings = restart(
        endpoint,
        args.model,
        args.container,
        args.restart_requests,
        args.rate,
        args.max_tokens,
        args.restart_at,
    )
    table = Table(title=f"bench-load ({args.label}): {endpoint.http_url}, model {args.model}")
    table.add_column("figure")
    table.add_column(args.label, justify="right")
    failed = sum(through.failures.values())
    rows = [
        (f"steady: requests at concurrency {args.concurrency}", str(load.sent)),
        ("steady: errors", str(sum(load.failures.values()))),
        ("steady: p50 / p99 latency (ms)", f"{pct(load.latencies, 0.5)} / {pct(load.latencies, 0.99)}"),
        ("steady: requests per second", f"{load.sent / load.wall:.1f}"),
        ("steady: tokens received by clients", str(load.tokens)),
        *[
            (f"steady: rise of {name}", f"{rise.get(name, 0):.0f}")
            for name in (
                "vllm:generation_tokens_total",
                "nv_inference_request_success_total",
                "nv_inference_request_failure_total",
            )
        ],
        (f"restart: requests at {args.rate:g}/s", str(through.sent)),
        ("restart: failed", f"{failed} ({failed / max(1, through.sent):.1%})"),
        *[(f"restart:   {kind}", str(count)) for kind, count in sorted(through.failures.items())],
        (
            "restart: p50 / p99 latency of the served (ms)",
            f"{pct(through.latencies, 0.5)} / {pct(through.latencies, 0.99)}",
        ),
        (f"restart: docker stop (at {args.restart_at:g} s) took (s)", f"{timings['stop']:.1f}"),
        ("restart: docker start until ready took (s)", f"{timings['start']:.1f}"),
    ]
    for row in rows:
        table.add_row(*row)
    console().print(table)


if __name__ == "__main__":
    main()
