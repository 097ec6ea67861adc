"""tritonfleet.rollout and the host PCI scan: what the playbooks decide on the control node."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tritonfleet.errors import InputError
from tritonfleet.host.pci import parse_scan
from tritonfleet.rollout import report
from tritonfleet.rollout.placement import plan_hosts
from tritonfleet.rollout.release import tree_hash

SOURCE = "inv"
GROUPS = ["gpu_fleet", "h200_nodes", "cpu"]
MODELS = ["small", "big", "tiny"]
MEMBERS = {"a": ["gpu_fleet"], "b": ["gpu_fleet", "h200_nodes"], "c": ["cpu"]}
PLACEMENT = {"gpu_fleet": ["small"], "h200_nodes": ["big", "small"], "cpu": ["tiny"]}


def hostvars(**overrides: object) -> dict[str, dict[str, object]]:
    base = {"tritonfleet_model_placement": PLACEMENT, "tritonfleet_expect_gpu": True}
    return {h: {**base, **overrides} for h in MEMBERS}


def plan(variables: dict, hosts: tuple[str, ...] = ("a", "b", "c")):
    return plan_hosts(list(hosts), variables, MEMBERS, GROUPS, MODELS, SOURCE)


def test_each_host_serves_the_union_of_its_groups_in_placement_order():
    plans = {p.name: p.models for p in plan(hostvars())}
    assert plans == {"a": ("small",), "b": ("small", "big"), "c": ("tiny",)}


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (
            {"tritonfleet_model_placement": {"gpu_fleet": ["small"], "gpu_fleat": ["big"]}},
            "inv: a: tritonfleet_model_placement.gpu_fleat: no such host group in the inventory "
            "(groups: cpu, gpu_fleet, h200_nodes)",
        ),
        (
            {"tritonfleet_model_placement": {"gpu_fleet": ["smal"]}},
            "inv: a: tritonfleet_model_placement.gpu_fleet: model smal is not in the model repository "
            "(models: big, small, tiny)",
        ),
        (
            {"tritonfleet_model_placement": ["small"]},
            "inv: a: tritonfleet_model_placement: ['small'] is not a mapping of group to models",
        ),
        ({"tritonfleet_model_placement": {}}, "inv: a: tritonfleet_model_placement: is empty"),
        ({"tritonfleet_expect_gpu": "yes"}, "inv: a: tritonfleet_expect_gpu: 'yes' is not true or false"),
        ({"tritonfleet_expect_gpu": 1}, "inv: a: tritonfleet_expect_gpu: 1 is not true or false"),
        (
            {"tritonfleet_model_placement": {"gpu_fleet": "small"}},
            "inv: a: tritonfleet_model_placement.gpu_fleet: 'small' is not a list of model names",
        ),
    ],
)
def test_a_bad_inventory_gets_one_line_naming_the_host_and_variable(overrides, line):
    with pytest.raises(InputError) as caught:
        plan(hostvars(**overrides))
    assert caught.value.line().startswith(line)
    assert "\n" not in caught.value.line()


def test_a_missing_required_variable_is_named():
    variables = hostvars()
    del variables["a"]["tritonfleet_expect_gpu"]
    with pytest.raises(InputError, match=r"^inv: a: tritonfleet_expect_gpu: is not set"):
        plan(variables)


def test_a_host_that_no_group_places_a_model_on_fails():
    variables = hostvars(tritonfleet_model_placement={"h200_nodes": ["big"]})
    with pytest.raises(
        InputError, match=r"^inv: a: tritonfleet_model_placement: places no model on this host"
    ):
        plan(variables, ("a",))


def test_all_is_a_group_a_placement_may_name():
    plans = plan(hostvars(tritonfleet_model_placement={"all": ["tiny"]}))
    assert {p.models for p in plans} == {("tiny",)}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@given(placement=json_values, expect=json_values)
def test_any_inventory_values_give_a_plan_or_one_line(placement, expect):
    variables = {
        h: {"tritonfleet_model_placement": placement, "tritonfleet_expect_gpu": expect} for h in MEMBERS
    }
    try:
        plans = plan(variables)
    except InputError as exc:
        assert "\n" not in exc.line()
    else:
        assert all(p.models for p in plans)


REAL_SCAN = """\
0000:00:00.0 0x8086 0x060000
0000:18:00.0 0x10de 0x030200
0000:2a:00.0 0x10de 0x030200
0000:07:00.0 0x10de 0x068000
0000:05:00.0 0x10de 0x040300
0000:65:00.0 0x1a03 0x030000
"""


def test_the_pci_scan_finds_nvidia_gpus_and_nvswitches_only():
    scan = parse_scan(REAL_SCAN)
    assert scan.gpus == ("0000:18:00.0", "0000:2a:00.0")  # not the ASPEED VGA, not the audio function
    assert scan.nvswitches == ("0000:07:00.0",)
    assert scan.has_gpu
    assert not parse_scan("0000:00:00.0 0x8086 0x060000\n").has_gpu


def test_a_line_that_is_not_a_device_is_named():
    with pytest.raises(InputError, match=r"^scan: line 2: 'garbage' is not"):
        parse_scan("0000:00:00.0 0x8086 0x060000\ngarbage\n", "scan")


@given(st.text(max_size=200))
def test_any_scan_text_parses_or_gives_one_line(text):
    try:
        parse_scan(text)
    except InputError as exc:
        assert "\n" not in exc.line()


def test_a_release_is_named_by_its_content(tmp_path: Path):
    release = tmp_path / "r"
    (release / "model_repository" / "m" / "1").mkdir(parents=True)
    (release / "compose.yaml").write_text("services: {}\n")
    (release / "model_repository" / "m" / "1" / "model.json").write_text("{}")
    first = tree_hash(release)
    assert first == tree_hash(release) and len(first) == 12
    (release / "model_repository" / "m" / "1" / "model.json").write_text('{"seed": 1}')
    changed = tree_hash(release)
    assert changed != first
    (release / "compose.yaml").chmod(0o600)
    assert tree_hash(release) != changed
    (release / "compose.yaml").rename(release / "other.yaml")
    assert tree_hash(release) not in (first, changed)


def test_a_missing_release_folder_is_one_line(tmp_path: Path):
    with pytest.raises(InputError, match="release folder not found"):
        tree_hash(tmp_path / "nope")


def test_the_report_lists_targeted_hosts_and_says_which_got_no_result(tmp_path: Path):
    hosts = tmp_path / "hosts"
    for name in ("h1", "h2", "old"):
        (hosts / name).mkdir(parents=True)
    (hosts / "h1" / "targeted").touch()
    (hosts / "h2" / "targeted").touch()
    outcome = {
        "status": "serving",
        "release": "abc",
        "image": "r/x@sha256:1",
        "models": ["m"],
        "detail": "ok",
    }
    (hosts / "h1" / "outcome.json").write_text(json.dumps(outcome))
    outcomes = report.read_outcomes(tmp_path)
    assert [(o.host, o.status) for o in outcomes] == [("h1", "serving"), ("h2", "no result")]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("{", "outcome.json: not JSON"),
        ("[]", "outcome.json: not a JSON object"),
        ('{"status": "great"}', "outcome.json: status: 'great' is not one of"),
        ('{"status": "serving", "models": "m"}', "outcome.json: models: is not a list"),
    ],
)
def test_a_broken_outcome_record_is_one_line(tmp_path: Path, text: str, line: str):
    (tmp_path / "hosts" / "h").mkdir(parents=True)
    (tmp_path / "hosts" / "h" / "targeted").touch()
    (tmp_path / "hosts" / "h" / "outcome.json").write_text(text)
    with pytest.raises(InputError) as caught:
        report.read_outcomes(tmp_path)
    assert line in caught.value.line()


def test_the_gate_failure_names_model_check_and_reason():
    checks = [
        {"model": "", "check": "server_live", "outcome": "passed", "reason": ""},
        {"model": "m", "check": "model_ready", "outcome": "failed", "reason": "ABSENT: expected"},
        *({"model": "m", "check": f"c{i}", "outcome": "failed", "reason": "not ready"} for i in range(4)),
    ]
    line = report.failed_checks({"hosts": [{"detail": "", "checks": checks}]})
    assert line == "m/model_ready (ABSENT: expected); m/c0 (not ready); m/c1 (not ready); and 2 more"
    assert report.failed_checks({"hosts": []}) == "no failed check in the report"
