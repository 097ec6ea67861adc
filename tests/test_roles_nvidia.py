"""The nvidia_driver and nvidia_container_toolkit roles, checked without Docker and without installing
anything: every variable documented and specified, no pinned version written in them, a real run on this
host (which has no GPU, so both roles skip), the driver query against recorded nvidia-smi output, the
production profile of ansible-lint and the syntax of their Molecule scenarios."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import GPU_HOSTS, ROOT, ansible_env, local_playbook

BIN = Path(sys.executable).parent
ROLES_DIR = ROOT / "ansible" / "roles"
ROLES = ("nvidia_driver", "nvidia_container_toolkit")
# The files a role's behaviour is written in (molecule/ holds its tests, not the role).
BEHAVIOUR = ("tasks", "handlers", "templates", "vars")


def _pins() -> dict[str, str]:
    """host.* of images/versions.yaml as dotted keys: the versions the roles install."""
    host = yaml.safe_load((ROOT / "images" / "versions.yaml").read_text())["host"]
    return {
        f"host.{group}.{key}": str(value) for group, values in host.items() for key, value in values.items()
    }


PINS = _pins()
BRANCH = PINS["host.nvidia.driver_branch"]


def _role_files(role: str, folders: tuple[str, ...]) -> list[Path]:
    return sorted(p for folder in folders for p in (ROLES_DIR / role / folder).rglob("*") if p.is_file())


def _load(role: str, name: str) -> dict:
    return yaml.safe_load((ROLES_DIR / role / name).read_text()) or {}


def _required(role: str) -> set[str]:
    options = _load(role, "meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    return {name for name, spec in options.items() if spec.get("required")}


# --- variables: used, defaulted, specified, documented ------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_every_role_variable_used_is_defaulted_and_specified(role):
    # A prefixed name anywhere in the role's behaviour (expressions, when:, messages) is a variable a
    # user can set; the role's own internals start with `__` and are not matched.
    pattern = re.compile(rf"(?<!\w){role}_\w+")
    used = {name for path in _role_files(role, BEHAVIOUR) for name in pattern.findall(path.read_text())}
    defaults = set(_load(role, "defaults/main.yml"))
    specified = set(_load(role, "meta/argument_specs.yml")["argument_specs"]["main"]["options"])
    required = _required(role)
    assert used, f"{role}: no variable found, the pattern is wrong"
    assert f"{role}_gpu_present" in required
    assert sorted(used - defaults - required) == [], "used but not in defaults/main.yml"
    assert sorted(used - specified) == [], "used but not in meta/argument_specs.yml"
    # And the other way: nothing specified that does not exist.
    assert sorted(specified - defaults - required) == []
    assert sorted(defaults - specified) == []


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_give_every_option_a_type_a_description_and_the_default(role):
    defaults = _load(role, "defaults/main.yml")
    options = _load(role, "meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    for name, spec in options.items():
        assert spec.get("type") and spec.get("description"), name
        if spec.get("required"):
            assert "default" not in spec, name
            assert name not in defaults, f"{name} is required: a default would hide a missing value"
        else:
            assert spec.get("default") == defaults[name], name


@pytest.mark.parametrize("role", ROLES)
def test_every_default_has_a_comment_above_it(role):
    lines = (ROLES_DIR / role / "defaults" / "main.yml").read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"[a-z_]+:", line):
            assert number > 0 and lines[number - 1].startswith("#"), f"defaults/main.yml:{number + 1}: {line}"
    # A required variable has no default, but it is documented there too, as a commented example.
    text = "\n".join(lines)
    for name in _required(role):
        assert re.search(rf"^# {name}: ", text, re.MULTILINE), name


# --- no version written in the roles ---------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_the_roles_write_no_pinned_version(role):
    offenders = [
        f"{path.relative_to(ROOT)}: {value} ({key})"
        for path in sorted(p for p in (ROLES_DIR / role).rglob("*") if p.is_file())
        for key, value in PINS.items()
        if value in path.read_text()
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("role", "key"),
    [
        ("nvidia_driver", "host.nvidia.driver_branch"),
        ("nvidia_container_toolkit", "host.nvidia.container_toolkit"),
    ],
)
def test_the_pin_comes_from_the_lookup(role, key):
    assert f"lookup('tritonfleet_pin', '{key}')" in (ROLES_DIR / role / "defaults" / "main.yml").read_text()


# --- structure: one setup file and one vars file per platform ----------------------------------------------

FAMILY_FILES = {"Debian": "Debian", "Ubuntu": "Ubuntu", "EL": "RedHat"}


def test_each_platform_of_the_driver_role_has_its_setup_and_vars():
    platforms = _load("nvidia_driver", "meta/main.yml")["galaxy_info"]["platforms"]
    for platform in platforms:
        name = FAMILY_FILES[platform["name"]]
        assert (ROLES_DIR / "nvidia_driver" / "tasks" / f"setup-{name}.yml").is_file(), name
        packages = _load("nvidia_driver", f"vars/{name}.yml")["__nvidia_driver_packages"]
        assert "cuda" in packages, name
        for source, flavours in packages.items():
            assert set(flavours) == {"open", "proprietary"}, (name, source)


def test_each_platform_family_of_the_toolkit_role_has_its_setup():
    platforms = _load("nvidia_container_toolkit", "meta/main.yml")["galaxy_info"]["platforms"]
    families = {"Debian" if p["name"] in ("Debian", "Ubuntu") else "RedHat" for p in platforms}
    for family in families:
        assert (ROLES_DIR / "nvidia_container_toolkit" / "tasks" / f"setup-{family}.yml").is_file()


# --- what the driver role would install, per platform (rendered, not run) ---------------------------------

RENDER = """\
- name: Render the driver role's per-OS choices for made-up facts.
  hosts: all
  gather_facts: false
  vars_files:
    - {role}/defaults/main.yml
    - {role}/vars/main.yml
    - {role}/vars/{os_vars}.yml
  tasks:
    - name: Write what the role would install.
      ansible.builtin.copy:
        content: "{{{{ {{'url': __nvidia_driver_cuda_url, 'packages': __nvidia_driver_install_packages,
                      'kernel': __nvidia_driver_kernel_packages,
                      'stream': __nvidia_driver_module_stream | default(''),
                      'pin': lookup('template', '{role}/templates/nvidia-driver-branch.pref.j2'),
                      'sources': lookup('template', '{role}/templates/cuda.sources.j2')}}
                      | to_json }}}}"
        dest: {result}
        mode: "0644"
      vars:
        ansible_facts:
          architecture: {arch}
          kernel: 6.1.0-0-test
          distribution_major_version: "{major}"
          distribution_version: "{version}"
          distribution_release: test
        nvidia_driver_source: {source}
        nvidia_driver_open_kernel_modules: {open}
"""

CUDA = "https://developer.download.nvidia.com/compute/cuda/repos"
B = BRANCH


def _case(name, os_vars, version, arch, source, open_modules, folder, packages, stream=""):
    """A platform (its vars file, version, architecture) and choice, and what the role should pick."""
    return pytest.param(
        os_vars, version, arch, source, open_modules, f"{CUDA}/{folder}/", packages, stream, id=name
    )


DEBIAN_DISTRO = ["nvidia-driver", "firmware-misc-nonfree"]


@pytest.mark.parametrize(
    ("os_vars", "version", "arch", "source", "open_modules", "url", "packages", "stream"),
    [
        _case("debian12-cuda-open", "Debian", "12", "x86_64", "cuda", True, "debian12/x86_64",
              [f"nvidia-open={B}.*", f"nvidia-persistenced={B}.*"]),
        _case("debian13-distro-open", "Debian", "13", "x86_64", "distro", True, "debian13/x86_64",
              [*DEBIAN_DISTRO, "nvidia-open-kernel-dkms", "nvidia-persistenced"]),
        _case("debian12-distro-proprietary", "Debian", "12", "x86_64", "distro", False, "debian12/x86_64",
              [*DEBIAN_DISTRO, "nvidia-kernel-dkms", "nvidia-persistenced"]),
        _case("ubuntu2404-arm-cuda", "Ubuntu", "24.04", "aarch64", "cuda", False, "ubuntu2404/sbsa",
              [f"cuda-drivers={B}.*"]),
        _case("ubuntu2204-distro-open", "Ubuntu", "22.04", "x86_64", "distro", True, "ubuntu2204/x86_64",
              [f"nvidia-driver-{B}-server-open", f"nvidia-utils-{B}-server"]),
        _case("rhel9-open", "RedHat", "9.4", "x86_64", "cuda", True, "rhel9/x86_64",
              ["nvidia-open", "nvidia-persistenced"], f"nvidia-driver:{B}-open"),
        _case("rhel9-proprietary", "RedHat", "9.4", "x86_64", "cuda", False, "rhel9/x86_64",
              ["cuda-drivers", "nvidia-persistenced"], f"nvidia-driver:{B}-dkms"),
    ],
)  # fmt: skip
def test_the_driver_role_picks_each_platforms_packages_at_the_branch(
    tmp_path, os_vars, version, arch, source, open_modules, url, packages, stream
):
    result_file = tmp_path / "result.json"
    play = tmp_path / "render.yml"
    play.write_text(
        RENDER.format(
            role=ROLES_DIR / "nvidia_driver",
            os_vars=os_vars,
            result=result_file,
            arch=arch,
            major=version.split(".")[0],
            version=version,
            source=source,
            open=str(open_modules).lower(),
        )
    )
    result = local_playbook(play)
    assert result.returncode == 0, result.stdout + result.stderr
    rendered = json.loads(result_file.read_text())
    assert (rendered["url"], rendered["packages"], rendered["stream"]) == (url, packages, stream)
    assert rendered["kernel"][0] in ("linux-headers-6.1.0-0-test", "kernel-devel-6.1.0-0-test")
    # The APT pin keeps upgrades on the branch; the CUDA source is the flat repository, signed.
    assert f"Pin: version {B}.*" in rendered["pin"]
    assert f"URIs: {url}" in rendered["sources"] and "Suites: /" in rendered["sources"]


# --- what the role reads from the package managers -------------------------------------------------------

PARSE = """\
- name: Read package manager output as the driver role does.
  hosts: all
  gather_facts: false
  vars_files:
    - {role}/defaults/main.yml
    - {role}/vars/main.yml
    - {role}/vars/RedHat.yml
  tasks:
    - name: Write what the role concluded.
      ansible.builtin.copy:
        content: "{{{{ {{'candidate': __nvidia_driver_distro_candidate,
                      'branch': __nvidia_driver_distro_candidate_branch,
                      'streams': __nvidia_driver_enabled_streams}} | to_json }}}}"
        dest: {result}
        mode: "0644"
      vars:
        __nvidia_driver_policy:
          stdout: {policy}
        __nvidia_driver_streams:
          stdout: {streams}
"""

# `apt-cache policy nvidia-driver` on Debian 12 with contrib and non-free (run here, 2026-12).
BOOKWORM_POLICY = """\
nvidia-driver:
  Installed: (none)
  Candidate: 535.261.03-1
  Version table:
     535.261.03-1 500
        500 http://deb.debian.org/debian bookworm/non-free amd64 Packages
"""
# `dnf module list --enabled nvidia-driver`, in the layout dnf prints (an enabled stream, and an
# enabled default one).
DNF_ENABLED = """\
Name            Stream              Profiles                    Summary
nvidia-driver   570-open [e]        default [d], fm, ks, src    Nvidia driver for 570-open branch
nvidia-driver   latest-dkms [d][e]  default [d], fm, ks         Nvidia driver for latest-dkms branch

Hint: [d]efault, [e]nabled, [x]disabled, [i]nstalled
"""


@pytest.mark.parametrize(
    ("policy", "streams", "expected"),
    [
        (BOOKWORM_POLICY, DNF_ENABLED, ("535.261.03-1", "535", ["570-open", "latest-dkms"])),
        ("nvidia-driver:\n  Installed: (none)\n  Candidate: 1:42.0.1-2\n", "", ("1:42.0.1-2", "42", [])),
        ("N: Unable to locate package nvidia-driver\n", "nvidia-driver   x [d]  default\n", ("", "", [])),
    ],
    ids=["bookworm-and-two-streams", "epoch", "nothing"],
)
def test_the_driver_role_reads_apt_candidates_and_dnf_streams(tmp_path, policy, streams, expected):
    result_file = tmp_path / "result.json"
    play = tmp_path / "parse.yml"
    play.write_text(
        PARSE.format(
            role=ROLES_DIR / "nvidia_driver",
            result=result_file,
            policy=json.dumps(policy),
            streams=json.dumps(streams),
        )
    )
    result = local_playbook(play)
    assert result.returncode == 0, result.stdout + result.stderr
    rendered = json.loads(result_file.read_text())
    assert (rendered["candidate"], rendered["branch"], rendered["streams"]) == expected


# --- Ansible itself: syntax, and a real run on this host without GPUs --------------------------------------

BOTH_ROLES = """\
- name: Apply both NVIDIA roles.
  hosts: all
  gather_facts: false
  roles:
    - role: nvidia_driver
      nvidia_driver_gpu_present: {gpu}
    - role: nvidia_container_toolkit
      nvidia_container_toolkit_gpu_present: {gpu}
"""


def test_a_playbook_of_both_roles_passes_the_syntax_check(tmp_path):
    play = tmp_path / "play.yml"
    play.write_text(BOTH_ROLES.format(gpu="true"))
    result = local_playbook(play, "--syntax-check")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("playbook", ["converge.yml", "verify.yml"])
def test_the_molecule_playbooks_pass_the_syntax_check(role, playbook):
    result = local_playbook(ROLES_DIR / role / "molecule" / "default" / playbook, "--syntax-check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_on_a_host_without_gpus_both_roles_only_say_they_skipped(tmp_path):
    # This machine has no GPU: a real run, which must change nothing and say so once per role.
    play = tmp_path / "play.yml"
    play.write_text(BOTH_ROLES.format(gpu="false"))
    result = local_playbook(play)
    out = " ".join(result.stdout.split())  # the YAML callback wraps long messages
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"localhost\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", out), out
    driver = "nvidia_driver: skipped the NVIDIA kernel module and driver: localhost has no NVIDIA GPU."
    toolkit = (
        "nvidia_container_toolkit: skipped the NVIDIA container toolkit runtime: localhost has no NVIDIA GPU."
    )
    assert out.count(driver) == 1, out
    assert out.count(toolkit) == 1, out
    # Nothing else ran: each role's GPU tasks are one skipped include.
    assert re.search(r"skipped=2\b", out), out


@pytest.mark.parametrize("role", ROLES)
def test_a_role_refuses_to_run_without_being_told_whether_there_is_a_gpu(tmp_path, role):
    play = tmp_path / "play.yml"
    play.write_text(f"- name: Apply {role}.\n  hosts: all\n  gather_facts: false\n  roles: [{role}]\n")
    result = local_playbook(play)
    assert result.returncode != 0
    assert f"{role}_gpu_present" in result.stdout + result.stderr


# --- the driver query: which driver answers, read from nvidia-smi ------------------------------------------

QUERY = """\
- name: Run the driver role's query only.
  hosts: all
  gather_facts: false
  tasks:
    - name: Ask nvidia-smi as the role does.
      ansible.builtin.include_role:
        name: nvidia_driver
        tasks_from: query
    - name: Write what the role concluded.
      ansible.builtin.copy:
        content: "{{{{ {{'at_branch': __nvidia_driver_at_branch,
                      'versions': __nvidia_driver_loaded_versions}} | to_json }}}}"
        dest: {result}
        mode: "0644"
"""


def _recorded_versions(host: str) -> list[str]:
    """The driver_version column of a real host's nvidia-smi query."""
    lines = (GPU_HOSTS / host / "smi-query.csv").read_text().splitlines()
    header = [name.strip() for name in lines[0].split(",")]
    column = header.index("driver_version")
    return [line.split(",")[column].strip() for line in lines[1:] if line.strip()]


def _nvidia_smi_stub(folder: Path, lines: list[str], code: int) -> Path:
    """An nvidia-smi that prints LINES and exits CODE when asked exactly what the role asks."""
    folder.mkdir()
    stub = folder / "nvidia-smi"
    printed = "".join(f"echo {shlex.quote(line)}\n" for line in lines)
    stub.write_text(
        "#!/bin/sh\n"
        'if [ "$*" != "--query-gpu=driver_version --format=csv,noheader" ]; then\n'
        '  echo "unexpected arguments: $*" >&2; exit 2\n'
        "fi\n"
        f"{printed}exit {code}\n"
    )
    stub.chmod(0o755)
    return folder


OTHER_BRANCH = str(int(BRANCH) - 10)
H100 = _recorded_versions("h100-x1")
H200 = _recorded_versions("h200-x2")


@pytest.mark.parametrize(
    ("lines", "code", "at_branch", "versions"),
    [
        (H100, 0, H100[0].split(".")[0] == BRANCH, H100),
        (H200, 0, H200[0].split(".")[0] == BRANCH, H200[:1]),
        ([f"{BRANCH}.1.2", f"{BRANCH}.1.2"], 0, True, [f"{BRANCH}.1.2"]),
        ([f"{OTHER_BRANCH}.247.01"], 0, False, [f"{OTHER_BRANCH}.247.01"]),
        ([f"{BRANCH}.1.2", f"{OTHER_BRANCH}.3.4"], 0, False, [f"{BRANCH}.1.2", f"{OTHER_BRANCH}.3.4"]),
        (["NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."], 9, False, []),
        ([], 0, False, []),
    ],
    ids=["h100-x1", "h200-x2", "branch", "other-branch", "mixed", "no-driver", "no-gpu-line"],
)
def test_the_driver_query_reads_what_nvidia_smi_answers(tmp_path, lines, code, at_branch, versions):
    stub = _nvidia_smi_stub(tmp_path / "bin", lines, code)
    result_file = tmp_path / "result.json"
    play = tmp_path / "query.yml"
    play.write_text(QUERY.format(result=result_file))
    result = local_playbook(play, PATH=f"{stub}{os.pathsep}{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result_file.read_text()) == {"at_branch": at_branch, "versions": versions}


def test_the_recorded_hosts_run_the_pinned_branch():
    # The fixtures are what a verified host prints: the query above must call them at the branch.
    assert {v.split(".")[0] for v in H100 + H200} == {BRANCH}


def test_without_nvidia_smi_the_driver_does_not_answer(tmp_path):
    result_file = tmp_path / "result.json"
    play = tmp_path / "query.yml"
    play.write_text(QUERY.format(result=result_file))
    empty = tmp_path / "empty"
    empty.mkdir()
    # PATH without any nvidia-smi (this machine has none either).
    result = local_playbook(play, PATH=f"{empty}{os.pathsep}{BIN}{os.pathsep}/usr/bin{os.pathsep}/bin")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result_file.read_text()) == {"at_branch": False, "versions": []}


# --- linters -------------------------------------------------------------------------------------------


def test_ansible_lint_production_profile_passes_on_both_roles():
    lint = BIN / "ansible-lint"
    if not lint.exists() and not shutil.which("ansible-lint"):
        pytest.skip("ansible-lint is not installed (pip install -e '.[dev]')")
    command = [
        str(lint if lint.exists() else shutil.which("ansible-lint")),
        "--profile",
        "production",
        "--nocolor",
    ]
    command += [str((ROLES_DIR / role).relative_to(ROOT)) for role in ROLES]
    result = subprocess.run(command, cwd=ROOT, env=ansible_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("role", ROLES)
def test_the_molecule_scenario_is_valid(role):
    # `molecule syntax` checks molecule.yml against the docker driver's schema and the converge playbook's
    # syntax; it creates no instance, so it needs neither Docker nor the fleet-host image.
    molecule = BIN / "molecule"
    if not molecule.exists():
        pytest.skip("molecule is not installed (pip install -e '.[dev]')")
    result = subprocess.run(
        [str(molecule), "syntax"], cwd=ROLES_DIR / role, env=ansible_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
