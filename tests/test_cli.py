"""The `tritonfleet` front door: help, facts from files, and one-line errors with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tritonfleet.serving.readiness import wait_until_ok

from helpers import GPU_HOSTS

H100 = GPU_HOSTS / "h100-x1"


def test_help_lists_every_command(cli):
    result = cli("--help")
    assert result.code == 0
    for command in ("facts", "validate", "render", "versions", "engine-args"):
        assert command in result.out


def test_console_script_is_installed():
    # The entry point `make setup` installs, not just the module.
    tool = f"{sys.prefix}/bin/tritonfleet"
    result = subprocess.run([tool, "versions", "triton.release"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().count(".") == 1


def test_facts_json_from_h100_files(cli):
    result = cli(
        "facts", "--query-csv", H100 / "smi-query.csv", "--xml", H100 / "smi-q.xml", "--format", "json"
    )
    assert result.code == 0, result.err
    facts = json.loads(result.out)
    assert [g["memory_usable_bytes"] for g in facts["gpus"]] == [85_017_493_504]
    assert facts["probe"]["status"] == "ok"


def test_facts_table_from_files(cli):
    result = cli("facts", "--query-csv", H100 / "smi-query.csv")
    assert result.code == 0
    assert "NVIDIA H100 80GB HBM3" in result.out
    assert "79.18" in result.out  # usable GiB


def test_facts_empty_file_is_one_line_exit_2(cli, tmp_path):
    empty = tmp_path / "smi.csv"
    empty.write_text("")
    result = cli("facts", "--query-csv", empty)
    assert result.code == 2
    assert result.out == ""
    assert result.err.count("\n") == 1
    assert result.err.startswith(f"tritonfleet facts: error: {empty}: line 1: file is empty")


def test_facts_truncated_csv_names_the_line(cli, tmp_path):
    cut = tmp_path / "smi.csv"
    text = (H100 / "smi-query.csv").read_text()
    cut.write_text(text[: text.index("MiB, 480")])
    result = cli("facts", "--query-csv", cut, "--format", "json")
    assert result.code == 2
    assert f"{cut}: line 2: " in result.err
    assert result.out == ""


def test_facts_non_numeric_memory(cli, tmp_path):
    bad = tmp_path / "smi.csv"
    bad.write_text((H100 / "smi-query.csv").read_text().replace("81559 MiB", "lots MiB"))
    result = cli("facts", "--query-csv", bad)
    assert result.code == 2
    assert "memory.total [MiB]: not a whole number of MiB: 'lots MiB'" in result.err


def test_wait_until_ok_names_the_url_and_gives_up():
    # Port 9 on loopback (discard) has no listener here: connection refused at once.
    url = "http://127.0.0.1:9/v2/health/ready"
    with pytest.raises(
        TimeoutError, match=r"127.0.0.1:9/v2/health/ready: not ready after 0.3 s \(last: ConnectionError\)"
    ):
        wait_until_ok(url, timeout=0.3, interval=0.1)
