"""Number flags: non-finite, absurd or malformed values are one usage line and exit 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import GPU_HOSTS, MODEL_REPOSITORY, ROOT

CONFIG = MODEL_REPOSITORY / "llama-3.1-8b-instruct" / "hf-config.json"


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--gpu-total-gib", "nan", "'nan' is not a finite number"),
        ("--gpu-total-gib", "inf", "'inf' is not a finite number"),
        ("--gpu-total-gib", "1e300", "1e300 is outside (0, 16384]"),
        ("--gpu-total-gib", "0", "0 is outside (0, 16384]"),
        ("--gpu-total-gib", "eighty", "'eighty' is not a number"),
        ("--gpu-memory-utilization", "nan", "'nan' is not a finite number"),
        ("--gpu-memory-utilization", "1.5", "1.5 is outside (0, 1]"),
        ("--tensor-parallel-size", "0", "0 is outside [1, 1024]"),
        ("--max-model-len", "4096.0", "'4096.0' is not a whole number"),
        ("--max-num-seqs", "-3", "-3 is outside [1, 16777216]"),
        ("--compute-capability", "nan", "'nan' is not a finite number"),
    ],
)
def test_memory_estimate_flags(cli, flag: str, value: str, says: str):
    args = ["memory", "estimate", "--model-config", CONFIG, "--gpu-total-gib", "80", flag, value]
    result = cli(*args)
    assert result.code == 2
    assert result.out == ""
    assert result.err == f"tritonfleet memory estimate: error: argument {flag}: {says}\n"


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--call-timeout", "nan", "'nan' is not a finite number"),
        ("--host-timeout", "inf", "'inf' is not a finite number"),
        ("--call-timeout", "-1", "-1 is outside (0, 86400]"),
        ("--parallel", "1e3", "'1e3' is not a whole number"),
    ],
)
def test_smoke_flags(cli, flag: str, value: str, says: str):
    result = cli("smoke", "--target", "http://127.0.0.1:9", flag, value)
    assert result.code == 2
    assert result.err == f"tritonfleet smoke: error: argument {flag}: {says}\n"


@pytest.mark.parametrize("value", ["nan", "inf", "-0.5", "1"])
def test_plan_margin(cli, value: str):
    result = cli("plan", MODEL_REPOSITORY, "--host-facts", GPU_HOSTS / "missing.json", "--margin", value)
    assert result.code == 2
    assert result.err.startswith("tritonfleet plan: error: argument --margin: ")
    assert result.err.count("\n") == 1


def test_an_unknown_command_is_one_line(cli):
    result = cli("deploy")
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "invalid choice: 'deploy'" in result.err


def test_the_smoke_suite_refuses_a_call_timeout_that_is_not_a_number():
    suite = [sys.executable, "-m", "pytest", "-c", ROOT / "smoke" / "pytest.ini", ROOT / "smoke"]
    done = subprocess.run(
        [*suite, "--target", "http://127.0.0.1:9", "--call-timeout", "nan"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 4  # pytest's usage error
    assert "smoke: --call-timeout: nan is not a positive number of seconds" in done.stderr
