"""The main job, for real: `make deploy` rolls the CPU stack out to 2 bare simulated hosts (bookworm and
trixie, each with its own Docker engine, pulling from a real registry by digest), gates each host,
changes nothing the second time, returns a canary whose gate fails to its previous release without
touching the other host, and fails an unreachable host alone.

The tests run in order: each one starts from the state the one before left.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tritonfleet.serving.readiness import wait_until_ok

from cpu_stack import make
from fleet import fleet_down, fleet_up, host_exec
from helpers import ROOT, dotenv

pytestmark = pytest.mark.integration

HOSTS = ("tf-host-1", "tf-host-2")
RELEASES = "/opt/tritonfleet"
SERVER = "tritonfleet-triton-cpu-1"  # the compose service's container inside each host
DEPLOY_TIMEOUT = 1800
_RECAP = re.compile(
    r"^(?P<host>\S+)\s+: ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+rescued=(?P<rescued>\d+)"
)


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counts by host."""
    found = {}
    for line in output.splitlines():
        match = _RECAP.match(line)
        if match:
            found[match["host"]] = {k: int(v) for k, v in match.groupdict().items() if k != "host"}
    return found


def deploy(*ansible_args: str) -> subprocess.CompletedProcess[str]:
    args = " ".join(ansible_args)
    return make("deploy", "HOSTS=sim_fleet", f"ANSIBLE_ARGS={args}", timeout=DEPLOY_TIMEOUT)


def current_release(host: str) -> str:
    return Path(host_exec(host, "readlink", f"{RELEASES}/current").stdout.strip()).name


def server_started_at(host: str) -> str:
    shown = host_exec(host, "docker", "inspect", "--format", "{{.State.StartedAt}}", SERVER)
    return shown.stdout.strip()


def report() -> dict[str, dict]:
    shown = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "tritonfleet"), "rollout-report", "build/deploy", "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return {row["host"]: row for row in json.loads(shown.stdout)}


def said(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def fleet() -> Iterator[dict]:
    """Two bare hosts (no Docker inside) and the registry; taken down at the end (each serves ~3 GB)."""
    described = fleet_up(2, fresh=True)
    weights = make("build/weights/tiny-llama")
    assert weights.returncode == 0, weights.stderr[-2000:]
    yield described
    fleet_down()


def test_deploy_from_bare_hosts_to_serving_and_a_green_gate(fleet: dict):
    for host in HOSTS:
        assert host_exec(host, "sh", "-c", "command -v docker", check=False).returncode != 0, (
            f"{host} not bare"
        )
    done = deploy()
    assert done.returncode == 0, said(done)
    counts = recap(done.stdout)
    assert set(counts) == set(HOSTS), said(done)
    assert all(c["failed"] == 0 and c["unreachable"] == 0 and c["changed"] > 0 for c in counts.values())
    rows = report()
    for host in HOSTS:
        assert host_exec(host, "systemctl", "is-active", "docker").stdout.strip() == "active"
        engine = host_exec(host, "docker", "version", "--format", "{{.Server.Version}}").stdout.strip()
        assert int(engine.split(".")[0]) >= 25, f"{host}: engine {engine}"
        assert host_exec(host, "docker", "compose", "version", "--short").stdout.startswith("2.")
        # Pulled from the fleet registry by digest, as the release's .env names it.
        env = host_exec(host, "cat", f"{RELEASES}/current/.env").stdout
        image = re.search(r"^TRITON_CPU_IMAGE=(\S+)$", env, re.M)
        assert image and re.fullmatch(
            r"tf-registry:\d+/tritonfleet/triton-vllm-cpu@sha256:[0-9a-f]{64}", image[1]
        )
        running = host_exec(host, "docker", "inspect", "--format", "{{.Config.Image}}", SERVER).stdout.strip()
        assert running == image[1]
        assert rows[host]["status"] == "serving" and rows[host]["models"] == ["tiny-llama"]
        gate = json.loads((ROOT / "build" / "deploy" / "gate" / f"{host}.json").read_text())
        assert gate["exit_code"] == 0 and gate["hosts"][0]["counts"]["failed"] == 0
    # The first host by name is the canary: it finished before the second began.
    first = done.stdout.index("TASK [Provision the host's base.]")
    assert done.stdout.find("[tf-host-2]", first) > done.stdout.find("Record that the host serves", first)


def test_a_second_run_changes_nothing(fleet: dict):
    started = {host: server_started_at(host) for host in HOSTS}
    done = deploy()
    assert done.returncode == 0, said(done)
    counts = recap(done.stdout)
    assert {h: c["changed"] for h, c in counts.items()} == dict.fromkeys(HOSTS, 0), said(done)
    assert {host: server_started_at(host) for host in HOSTS} == started


def test_check_mode_runs_and_changes_nothing(fleet: dict):
    started = {host: server_started_at(host) for host in HOSTS}
    releases = {host: current_release(host) for host in HOSTS}
    done = deploy("--check", "--diff")
    assert done.returncode == 0, said(done)
    assert {h: c["changed"] for h, c in recap(done.stdout).items()} == dict.fromkeys(HOSTS, 0), said(done)
    assert {host: server_started_at(host) for host in HOSTS} == started
    assert {host: current_release(host) for host in HOSTS} == releases


def test_old_releases_beyond_the_kept_ones_are_removed_but_never_the_previous_one(fleet: dict):
    """Three older releases on the canary, the oldest named by `previous`: with 3 kept (the default),
    the second oldest goes, and the host's server is not restarted for it."""
    host = "tf-host-1"
    serving = current_release(host)
    started = server_started_at(host)
    old = ["0ld000000001", "0ld000000002", "0ld000000003"]
    for day, name in enumerate(old, start=1):
        folder = f"{RELEASES}/releases/{name}"
        host_exec(host, "mkdir", "-p", f"{folder}/model_repository/tiny-llama")
        host_exec(host, "touch", f"{folder}/.complete")
        host_exec(host, "touch", "-h", "-d", f"2020-01-0{day} 00:00", folder)
    host_exec(host, "ln", "-sfn", f"{RELEASES}/releases/{old[0]}", f"{RELEASES}/previous")
    try:
        done = deploy()
        assert done.returncode == 0, said(done)
        changed = {h: c["changed"] for h, c in recap(done.stdout).items()}
        assert changed == {host: 1, "tf-host-2": 0}, said(done)
        held = host_exec(host, "ls", f"{RELEASES}/releases").stdout.split()
        assert sorted(held) == sorted([old[0], old[2], serving])
        assert current_release(host) == serving and server_started_at(host) == started
    finally:
        host_exec(host, "rm", "-rf", f"{RELEASES}/previous", *(f"{RELEASES}/releases/{n}" for n in old))


def test_a_broken_release_fails_the_canary_which_returns_to_its_previous_release(fleet: dict, tmp_path: Path):
    good = {host: current_release(host) for host in HOSTS}
    untouched = server_started_at("tf-host-2")
    broken = tmp_path / "model_repository"
    shutil.copytree(ROOT / "model_repository", broken)
    engine_args = broken / "tiny-llama" / "1" / "model.json"
    # Valid to every check made before a host (the key and its type are right), but longer than the
    # model's 2048 positions: vLLM refuses it when the engine starts, so the server never gets ready.
    engine_args.write_text(json.dumps({**json.loads(engine_args.read_text()), "max_model_len": 100000}))
    done = deploy(
        f"-e validate_model_repository={broken}",
        f"-e triton_service_model_repository={broken}",
    )
    assert done.returncode != 0, said(done)
    counts = recap(done.stdout)
    assert counts["tf-host-1"]["failed"] == 1 and counts["tf-host-1"]["rescued"] >= 1, said(done)
    assert f"back on release {good['tf-host-1']}, which passed its gate" in done.stdout, said(done)
    assert "did not get ready" in done.stdout, said(done)
    # The canary serves its previous release again, and passed its gate there.
    assert current_release("tf-host-1") == good["tf-host-1"]
    rows = report()
    assert rows["tf-host-1"]["status"] == "rolled back" and rows["tf-host-1"]["release"] == good["tf-host-1"]
    # The other host was never touched: same release, same running server.
    assert current_release("tf-host-2") == good["tf-host-2"]
    assert server_started_at("tf-host-2") == untouched
    assert rows["tf-host-2"]["status"] == "no result"
    rollout = done.stdout.split("PLAY [Roll out")[-1].split("PLAY RECAP")[0]
    assert "[tf-host-2]" not in rollout, "the second host took part in the rollout"


def _pause_during_the_canary(process: subprocess.Popen[str], lines: list[str], host: str) -> None:
    """Freeze HOST once the rollout play is under way on the canary: HOST's batch finds it not answering."""
    in_rollout = False
    for line in process.stdout or ():
        lines.append(line)
        in_rollout = in_rollout or line.startswith("PLAY [Roll out")
        if in_rollout and "[tf-host-1]" in line:
            subprocess.run(["docker", "pause", host], capture_output=True, check=True)
            break
    lines.extend(process.stdout or ())


def test_a_host_made_unreachable_mid_play_fails_alone(fleet: dict, tmp_path: Path):
    changed = tmp_path / "model_repository"
    shutil.copytree(ROOT / "model_repository", changed)
    engine_args = changed / "tiny-llama" / "1" / "model.json"
    engine_args.write_text(json.dumps({**json.loads(engine_args.read_text()), "seed": 1}, indent=2))
    command = [
        "make",
        "--no-print-directory",
        "deploy",
        "HOSTS=sim_fleet",
        f"ANSIBLE_ARGS=-e validate_model_repository={changed} -e triton_service_model_repository={changed}",
    ]
    lines: list[str] = []
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watcher = threading.Thread(target=_pause_during_the_canary, args=(process, lines, "tf-host-2"))
    watcher.start()
    try:
        process.wait(timeout=DEPLOY_TIMEOUT)
    finally:
        watcher.join(timeout=60)
        subprocess.run(["docker", "unpause", "tf-host-2"], capture_output=True)
    output = "".join(lines)
    assert process.returncode != 0, output[-6000:]
    counts = recap(output)
    assert counts["tf-host-2"]["unreachable"] == 1, output[-6000:]
    assert counts["tf-host-1"] == {**counts["tf-host-1"], "failed": 0, "unreachable": 0}
    rows = report()
    assert rows["tf-host-1"]["status"] == "serving"
    assert rows["tf-host-2"]["status"] == "no result"
    assert "tf-host-2" in output.split("PLAY RECAP")[-1]
    # The host that stayed reachable serves the new release.
    assert current_release("tf-host-1") == rows["tf-host-1"]["release"]
    address = next(h["address"] for h in fleet["hosts"] if h["name"] == "tf-host-1")
    wait_until_ok(f"http://{address}:{dotenv()['TRITON_HTTP_PORT']}/v2/health/ready", timeout=10)


def test_make_rollback_returns_a_host_to_its_previous_release(fleet: dict):
    now = current_release("tf-host-1")
    before = Path(host_exec("tf-host-1", "readlink", f"{RELEASES}/previous").stdout.strip()).name
    assert before != now
    done = make("rollback", "HOSTS=tf-host-1", timeout=DEPLOY_TIMEOUT)
    assert done.returncode == 0, said(done)
    assert current_release("tf-host-1") == before
    assert Path(host_exec("tf-host-1", "readlink", f"{RELEASES}/previous").stdout.strip()).name == now
    gate = json.loads((ROOT / "build" / "deploy" / "gate" / "tf-host-1.json").read_text())
    assert gate["exit_code"] == 0


def test_the_hugging_face_token_reaches_no_log_file_or_container(fleet: dict, tmp_path: Path):
    """A model named by its hub id is fetched on the host with the token; the hub is out of reach here,
    so the fetch fails, the canary returns to its release, and the token must show up nowhere."""
    token = "hf_tritonfleetTestToken0123456789"
    hub = tmp_path / "model_repository"
    shutil.copytree(ROOT / "model_repository", hub)
    engine_args = hub / "tiny-llama" / "1" / "model.json"
    engine_args.write_text(
        json.dumps({**json.loads(engine_args.read_text()), "model": "tritonfleet/no-such-model"})
    )
    before = current_release("tf-host-1")
    done = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "deploy",
            "HOSTS=sim_fleet",
            f"ANSIBLE_ARGS=-e validate_model_repository={hub} -e triton_service_model_repository={hub}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DEPLOY_TIMEOUT,
        env={**os.environ, "HF_TOKEN": token},
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-6000:]
    assert "tf-host-1: could not fetch tritonfleet/no-such-model from Hugging Face" in " ".join(
        output.split()
    )
    assert token not in output
    assert current_release("tf-host-1") == before
    for host in HOSTS:
        found = host_exec(
            host,
            "grep",
            "-rl",
            token,
            "/opt/tritonfleet",
            "/var/cache/tritonfleet",
            "/etc",
            "/root",
            "/tmp",
            check=False,
        )
        assert found.returncode == 1 and not found.stdout, f"{host}: the token is in {found.stdout}"
        inspected = host_exec(host, "sh", "-c", "docker ps -aq | xargs -r docker inspect", check=False).stdout
        assert token not in inspected
    leaked = subprocess.run(
        ["grep", "-rl", token, str(ROOT / "build" / "deploy")], capture_output=True, text=True
    )
    assert leaked.returncode == 1, f"the token is in {leaked.stdout}"
