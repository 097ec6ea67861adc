"""Bad input to the rollout fails in validate, on the control node, before any host is contacted.

Each case runs the real ansible/site.yml against an inventory whose hosts are unreachable addresses
(TEST-NET-1, RFC 5737): had the play connected to one, the recap would count it unreachable.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import ROOT, local_playbook

BIN = Path(sys.executable).parent
FIXTURES = ROOT / "tests" / "fixtures" / "gpu-hosts"
HOSTS = {
    "all": {
        "children": {
            "fleet": {
                "children": {
                    "small": {"hosts": {"gpu-01": {"ansible_host": "192.0.2.11"}}},
                    "big": {"hosts": {"gpu-02": {"ansible_host": "192.0.2.12"}}},
                }
            }
        }
    }
}
GOOD = {"tritonfleet_model_placement": {"fleet": ["llama-3.1-8b-instruct"]}, "tritonfleet_expect_gpu": True}


def run(tmp_path: Path, group_vars: dict, *args: str) -> subprocess.CompletedProcess[str]:
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(yaml.safe_dump(HOSTS))
    (inventory / "group_vars" / "all.yml").write_text(yaml.safe_dump(group_vars))
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), "ansible/site.yml", "--limit", "fleet", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def without(key: str) -> dict:
    return {k: v for k, v in GOOD.items() if k != key}


CASES = {
    "missing variable": (without("tritonfleet_expect_gpu"), "gpu-01: tritonfleet_expect_gpu: is not set"),
    "wrong type": (
        {**GOOD, "tritonfleet_expect_gpu": "yes"},
        "gpu-01: tritonfleet_expect_gpu: 'yes' is not true or false",
    ),
    "placement on a group that does not exist": (
        {**GOOD, "tritonfleet_model_placement": {"fleet": ["llama-3.1-8b-instruct"], "gpu_flet": ["x"]}},
        "tritonfleet_model_placement.gpu_flet: no such host group in the inventory "
        "(groups: big, fleet, small)",
    ),
    "model not in the repository": (
        {**GOOD, "tritonfleet_model_placement": {"fleet": ["llama-9b"]}},
        "tritonfleet_model_placement.fleet: model llama-9b is not in the model repository",
    ),
    "role variable outside its choices": (
        {**GOOD, "container_runtime_docker_source": "snap"},
        "gpu-01: role container_runtime: value of container_runtime_docker_source must be one of: "
        "docker, distro",
    ),
    "role variable of the wrong type": (
        {**GOOD, "triton_service_keep_releases": "three"},
        "gpu-01: role triton_service:",
    ),
    "role variable that does not exist": (
        {**GOOD, "container_runtime_docker_sauce": "x"},
        "gpu-01: container_runtime_docker_sauce: role container_runtime has no such variable",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_inventory_fails_in_validate_before_any_host_is_contacted(tmp_path: Path, case: str):
    group_vars, line = CASES[case]
    done = run(tmp_path, group_vars)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    assert line in " ".join(output.split()), output[-3000:]  # the callback folds long lines
    assert "PLAY [Read each host's GPUs" not in output, "a play after validate ran"
    assert "UNREACHABLE" not in output and "unreachable=1" not in output


def test_an_unknown_host_group_is_refused(tmp_path: Path):
    done = run(tmp_path, GOOD, "--limit", "gpu_flet")
    assert done.returncode != 0
    assert "Could not match supplied host pattern, ignoring: gpu_flet" in done.stderr


def test_make_deploy_refuses_a_group_that_matches_no_host(tmp_path: Path):
    run(tmp_path, GOOD, "--syntax-check")  # writes the inventory
    done = subprocess.run(
        ["make", "--no-print-directory", "deploy", "HOSTS=gpu_flet", f"INVENTORY={tmp_path / 'inventory'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert f"deploy: {tmp_path / 'inventory'}: HOSTS=gpu_flet matches no host" in done.stderr


def test_a_model_that_does_not_fit_the_hosts_gpus_fails_its_plan_before_the_host_changes(tmp_path: Path):
    """The plan step site.yml runs for each host, with the facts of a real 2 x H200 host."""
    facts = subprocess.run(
        [
            str(BIN / "tritonfleet"),
            "facts",
            "--format",
            "json",
            "--query-csv",
            str(FIXTURES / "h200-x2" / "smi-query.csv"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    playbook = tmp_path / "plan.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Plan one host.",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "Render the host's model repository with the planner.",
                            "ansible.builtin.include_role": {"name": "triton_service", "tasks_from": "plan"},
                            "vars": {
                                "triton_service_profile": "gpu",
                                "triton_service_models": ["llama-3.3-70b-instruct"],
                                "triton_service_host_facts": json.loads(facts),
                                "triton_service_model_repository": str(ROOT / "model_repository"),
                                "triton_service_stage_dir": str(tmp_path / "stage"),
                            },
                        }
                    ],
                }
            ]
        )
    )
    done = local_playbook(playbook)
    assert done.returncode == 2, done.stdout[-3000:]
    refusal = (
        "localhost: tritonfleet render: error: "
        f"{ROOT}/model_repository/llama-3.3-70b-instruct/1/model.json: tensor_parallel_size: 1 instance(s) "
        "x tp 4 x pp 1 needs 4 GPU(s), but"
    )
    assert refusal in " ".join(done.stdout.split()), done.stdout[-3000:]
    assert not (tmp_path / "stage" / "release" / "model_repository").exists()
