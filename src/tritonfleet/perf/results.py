"""What a load generator measured, in one model for GenAI-Perf and AIPerf.

Both tools write one JSON export per run with the same metric names: GenAI-Perf's
`profile_export_genai_perf.json` and AIPerf's `profile_export_aiperf.json` (the versions pinned in
images/versions.yaml). Per-request metrics
(time_to_first_token, inter_token_latency, request_latency, ...) carry a unit and percentiles; whole-run
ones (request_throughput, output_token_throughput, request_count) carry a unit and `avg` only.
`parse_export` reads either into `Measured`. Whatever the text, the answer is a Measured or one
InputError that names the file and the field.

Where they differ: GenAI-Perf leaves inter_token_latency out when the run did not stream; AIPerf writes
`is_complete`, `was_cancelled` and, when requests failed, `error_request_count`; AIPerf leaves
input_sequence_length out for a Triton payload template (it counts input tokens only in the payload
keys it knows), so the input length is then the workload's, not the tool's.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from tritonfleet.errors import InputError
from tritonfleet.files import load_json_object, read_text

Tool = Literal["genai-perf", "aiperf"]
EXPORT_FILE: dict[Tool, str] = {
    "genai-perf": "profile_export_genai_perf.json",
    "aiperf": "profile_export_aiperf.json",
}
# An export is a few kB (AIPerf's with every metric about 40 kB); more is not one.
MAX_EXPORT_BYTES = 16 << 20
# Time units either tool writes, in milliseconds.
_TO_MS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3, "sec": 1e3}
_PERCENTILES = ("avg", "p50", "p90", "p99")


class Latency(BaseModel):
    """One latency's mean and percentiles over the run's requests, in milliseconds."""

    model_config = ConfigDict(frozen=True)

    avg: float
    p50: float
    p90: float
    p99: float


class Measured(BaseModel):
    """One run of one tool against one model at one concurrency: the client's view."""

    model_config = ConfigDict(frozen=True)

    tool: Tool
    requests: int
    failed_requests: int
    complete: bool
    time_to_first_token: Latency
    time_to_second_token: Latency | None
    inter_token_latency: Latency | None  # None when the run did not stream
    request_latency: Latency
    output_tokens_per_second: float
    requests_per_second: float
    output_tokens: float  # the client's count over the run's requests, to set beside the server's
    input_tokens_mean: float | None


def detect_tool(data: dict[str, Any]) -> Tool | None:
    """Which tool wrote an export: AIPerf names itself; GenAI-Perf echoes its perf_analyzer config."""
    if "aiperf_version" in data:
        return "aiperf"
    config = data.get("input_config")
    if isinstance(config, dict) and "perf_analyzer" in config:
        return "genai-perf"
    return None


def _number(value: object, source: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(source, field, f"{value!r:.40} is not a number")
    if value < 0:
        raise InputError(source, field, f"{value} is negative")
    return float(value)


def _metric(data: dict[str, Any], key: str, source: str) -> dict[str, Any] | None:
    metric = data.get(key)
    if metric is None:
        return None
    if not isinstance(metric, dict):
        raise InputError(source, key, f"is {type(metric).__name__}, not an object with a unit and figures")
    return metric


def _latency(data: dict[str, Any], key: str, source: str, *, required: bool) -> Latency | None:
    metric = _metric(data, key, source)
    if metric is None:
        if required:
            raise InputError(source, key, "is missing")
        return None
    unit = metric.get("unit")
    if unit not in _TO_MS:
        raise InputError(source, f"{key}.unit", f"{unit!r:.40} is not a time unit ({', '.join(_TO_MS)})")
    scale = _TO_MS[unit]
    figures = {}
    for stat in _PERCENTILES:
        if stat not in metric:
            raise InputError(source, f"{key}.{stat}", "is missing")
        figures[stat] = _number(metric[stat], source, f"{key}.{stat}") * scale
    if not figures["p50"] <= figures["p90"] <= figures["p99"]:
        raise InputError(source, key, "its percentiles do not grow (p50 <= p90 <= p99)")
    return Latency(**figures)


def _rate(data: dict[str, Any], key: str, unit: str, source: str, *, required: bool = True) -> float | None:
    metric = _metric(data, key, source)
    if metric is None:
        if required:
            raise InputError(source, key, "is missing")
        return None
    if metric.get("unit") != unit:
        raise InputError(source, f"{key}.unit", f"{metric.get('unit')!r:.40} is not {unit!r}")
    if "avg" not in metric:
        raise InputError(source, f"{key}.avg", "is missing")
    return _number(metric["avg"], source, f"{key}.avg")


def _count(data: dict[str, Any], key: str, source: str, *, required: bool) -> int:
    metric = _metric(data, key, source)
    if metric is None:
        if required:
            raise InputError(source, key, "is missing")
        return 0
    value = _number(metric.get("avg"), source, f"{key}.avg")
    if value != int(value):
        raise InputError(source, f"{key}.avg", f"{value} is not a whole number of requests")
    return int(value)


def parse_data(data: dict[str, Any], source: str, tool: Tool | None = None) -> Measured:
    """An export's parsed JSON as Measured; InputError naming SOURCE and the field otherwise."""
    found = detect_tool(data)
    if tool is None:
        if found is None:
            raise InputError(source, None, "is neither a GenAI-Perf nor an AIPerf profile export")
        tool = found
    elif found is not None and found != tool:
        raise InputError(source, None, f"is a {found} export, not a {tool} one")
    # GenAI-Perf names the request count's unit "count", AIPerf "requests".
    requests = _count(data, "request_count", source, required=True)
    complete = data.get("is_complete", True)
    if not isinstance(complete, bool):
        raise InputError(source, "is_complete", f"{complete!r:.40} is not true or false")
    if data.get("was_cancelled") is True:
        complete = False
    lengths = _metric(data, "output_sequence_length", source)
    if lengths is None:
        raise InputError(source, "output_sequence_length", "is missing")
    output_mean = _number(lengths.get("avg"), source, "output_sequence_length.avg")
    inputs = _metric(data, "input_sequence_length", source)
    input_mean = None if inputs is None else _number(inputs.get("avg"), source, "input_sequence_length.avg")
    return Measured(
        tool=tool,
        requests=requests,
        failed_requests=_count(data, "error_request_count", source, required=False),
        complete=complete,
        time_to_first_token=_latency(data, "time_to_first_token", source, required=True),
        time_to_second_token=_latency(data, "time_to_second_token", source, required=False),
        inter_token_latency=_latency(data, "inter_token_latency", source, required=False),
        request_latency=_latency(data, "request_latency", source, required=True),
        output_tokens_per_second=_rate(data, "output_token_throughput", "tokens/sec", source),
        requests_per_second=_rate(data, "request_throughput", "requests/sec", source),
        output_tokens=output_mean * requests,
        input_tokens_mean=input_mean,
    )


def parse_export(path: Path | str, tool: Tool | None = None) -> Measured:
    """A profile export file as Measured (the tool detected when not given)."""
    source = str(path)
    text = read_text(path, "profile export", MAX_EXPORT_BYTES, regular=True)
    return parse_data(load_json_object(text, source), source, tool)
