"""tritonfleet.gpus on real nvidia-smi captures (tests/fixtures/gpu-hosts) and on broken copies of them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from tritonfleet.errors import InputError
from tritonfleet.host.gpus import (
    PROBE_COMMANDS,
    HostFacts,
    Runner,
    collect,
    facts_table,
    parse_query_csv,
    parse_topo,
    probe_local,
    read_host_facts,
)
from tritonfleet.units import MiB

from helpers import GPU_HOSTS, error_line, write

H100, H200, PCIE4 = GPU_HOSTS / "h100-x1", GPU_HOSTS / "h200-x2", GPU_HOSTS / "synthetic-pcie-x4-nic2"
H100_USABLE = 85_017_493_504  # what torch.cuda.mem_get_info reported as total on that host (ctx.txt)
# memory.total - memory.reserved = 143771 - 616 MiB. (The fixture README's "= 143156" is a slip; CUDA said
# 143155.94 MiB, and nvidia-smi's memory.free of 143156 MiB is that rounded.)
H200_USABLE = 143155 * MiB
H200_UUIDS = ["GPU-ee32b95a-7d65-1510-d0c2-bb26f987df67", "GPU-6f263078-db1c-ef99-ea1c-632f15046016"]


def text(host: Path, name: str) -> str:
    return (host / name).read_text(encoding="utf-8")


def host_files(host: Path) -> tuple[Path, Path, Path]:
    return host / "smi-query.csv", host / "smi-q.xml", host / "smi-topo.txt"


# --- real captures ------------------------------------------------------------------------------------


def test_h100_all_sources() -> None:
    facts = read_host_facts(*host_files(H100))
    assert facts.gpu_count == 1
    gpu = facts.gpus[0]
    assert gpu.memory_usable_bytes == H100_USABLE
    assert gpu.memory_total_bytes == 81559 * MiB
    assert gpu.memory_reserved_bytes == 480 * MiB
    assert (gpu.memory_used_bytes, gpu.memory_free_bytes) == (0, 81079 * MiB)
    assert gpu.name == "NVIDIA H100 80GB HBM3"
    assert gpu.uuid == "GPU-510529ef-fb74-69be-ea8a-5d5aef678539"
    assert gpu.pci_bus_id == "00000000:00:06.0"
    assert (gpu.compute_capability, gpu.mig_mode) == ("9.0", "Disabled")
    assert (gpu.links, gpu.cpu_affinity, gpu.numa_affinity) == ({}, "0-15", "0")
    assert (facts.driver_version, facts.cuda_version) == ("580.159.04", "13.0")
    assert facts.probe.status == "ok"
    assert not facts.all_pairs_nvlink  # one GPU has no pair


def test_h200_all_sources() -> None:
    facts = read_host_facts(*host_files(H200))
    assert [g.index for g in facts.gpus] == [0, 1]
    assert [g.uuid for g in facts.gpus] == H200_UUIDS
    assert [g.pci_bus_id for g in facts.gpus] == ["00000000:00:06.0", "00000000:00:07.0"]
    for gpu in facts.gpus:
        assert gpu.memory_usable_bytes == H200_USABLE == 150_108_897_280
        assert gpu.memory_reserved_bytes == 616 * MiB
        assert gpu.compute_capability == "9.0"
        assert (gpu.cpu_affinity, gpu.numa_affinity) == ("0-31", "0")
    assert facts.gpus[0].links == {1: "NV18"}
    assert facts.gpus[1].links == {0: "NV18"}
    assert facts.all_pairs_nvlink
    assert (facts.driver_version, facts.cuda_version) == ("580.159.04", "13.0")


@pytest.mark.parametrize("host", [H100, H200])
def test_usable_matches_what_cuda_reported(host: Path) -> None:
    # ctx.txt's first line: "ctx free,total <free> <total> ...", from torch.cuda.mem_get_info on that host.
    cuda_total = int(text(host, "ctx.txt").split()[3])
    for gpu in read_host_facts(*host_files(host)).gpus:
        # nvidia-smi rounds to MiB; total - reserved may fall short of CUDA's figure, never exceed it.
        assert 0 <= cuda_total - gpu.memory_usable_bytes < MiB


def test_csv_only_has_no_cuda_version() -> None:
    facts = collect(text(H200, "smi-query.csv"))
    assert facts.cuda_version is None
    assert facts.driver_version == "580.159.04"
    assert [g.memory_usable_bytes for g in facts.gpus] == [H200_USABLE, H200_USABLE]
    assert [g.mig_mode for g in facts.gpus] == ["Disabled", "Disabled"]
    assert not facts.all_pairs_nvlink  # no topology: unknown must not read as NVLink


def test_xml_only_has_no_compute_capability() -> None:
    facts = collect(xml=text(H100, "smi-q.xml"))
    gpu = facts.gpus[0]
    assert gpu.compute_capability is None
    assert gpu.memory_usable_bytes == H100_USABLE
    assert gpu.memory_reserved_bytes == 480 * MiB
    assert (gpu.name, gpu.mig_mode) == ("NVIDIA H100 80GB HBM3", "Disabled")
    assert (facts.driver_version, facts.cuda_version) == ("580.159.04", "13.0")


def test_xml_index_is_position() -> None:
    facts = collect(xml=text(H200, "smi-q.xml"))
    assert [(g.index, g.uuid) for g in facts.gpus] == list(enumerate(H200_UUIDS))


# --- CSV shapes ---------------------------------------------------------------------------------------


def test_nounits_header_without_reserved_uses_used_plus_free() -> None:
    # The values of the real smi-query-nounits.csv, captured with a header this time.
    csv_text = (
        "index, name, memory.total [MiB], memory.used [MiB], memory.free [MiB], driver_version, compute_cap\n"
        + text(H100, "smi-query-nounits.csv")
    )
    gpu = collect(csv_text).gpus[0]
    assert gpu.memory_reserved_bytes is None
    assert gpu.memory_usable_bytes == H100_USABLE
    assert gpu.compute_capability == "9.0"


def test_columns_in_any_order_and_unknown_columns_ignored() -> None:
    csv_text = (
        "power.limit [W], memory.total [MiB], name, memory.reserved [MiB], index\n"
        "700.00 W, 81559 MiB, NVIDIA H100 80GB HBM3, 480 MiB, 0\n"
    )
    gpu = collect(csv_text).gpus[0]
    assert (gpu.index, gpu.name, gpu.memory_usable_bytes) == (0, "NVIDIA H100 80GB HBM3", H100_USABLE)


def test_unknown_values_are_none() -> None:
    csv_text = (
        "index, name, memory.total [MiB], memory.reserved [MiB], memory.used [MiB], memory.free [MiB], "
        "compute_cap, mig.mode.current, uuid\n"
        "0, NVIDIA H100 80GB HBM3, 81559 MiB, [N/A], 0 MiB, 81079 MiB, [Not Supported], N/A, [N/A]\n"
    )
    gpu = collect(csv_text).gpus[0]
    assert (gpu.memory_reserved_bytes, gpu.compute_capability, gpu.mig_mode, gpu.uuid) == (
        None,
        None,
        None,
        None,
    )
    assert gpu.memory_usable_bytes == H100_USABLE  # from used + free


def test_usable_unknown_names_field() -> None:
    csv_text = (
        "index, name, memory.total [MiB], memory.used [MiB]\n0, NVIDIA H100 80GB HBM3, 81559 MiB, 0 MiB\n"
    )
    with pytest.raises(InputError) as excinfo:
        collect(csv_text, query_source="q.csv")
    assert error_line(excinfo).startswith("q.csv: gpu[0].memory.reserved: unknown")


# --- merging CSV and XML ------------------------------------------------------------------------------


def test_xml_fills_gaps_matched_by_uuid() -> None:
    # Rows in reverse order and no reserved/pci/mig columns: the XML supplies them, matched by UUID.
    csv_text = (
        "index, uuid, name, memory.total [MiB]\n"
        f"1, {H200_UUIDS[1]}, NVIDIA H200, 143771 MiB\n"
        f"0, {H200_UUIDS[0]}, NVIDIA H200, 143771 MiB\n"
    )
    facts = collect(csv_text, text(H200, "smi-q.xml"))
    assert [(g.index, g.uuid, g.pci_bus_id) for g in facts.gpus] == [
        (0, H200_UUIDS[0], "00000000:00:06.0"),
        (1, H200_UUIDS[1], "00000000:00:07.0"),
    ]
    assert [g.memory_reserved_bytes for g in facts.gpus] == [616 * MiB, 616 * MiB]
    assert [g.memory_usable_bytes for g in facts.gpus] == [H200_USABLE, H200_USABLE]
    assert facts.cuda_version == "13.0"


def test_csv_values_win_over_xml() -> None:
    csv_text = "index, name, memory.total [MiB], memory.reserved [MiB]\n0, H100 per CSV, 81559 MiB, 500 MiB\n"
    gpu = collect(csv_text, text(H100, "smi-q.xml")).gpus[0]
    assert gpu.name == "H100 per CSV"
    assert gpu.memory_reserved_bytes == 500 * MiB
    assert gpu.memory_usable_bytes == (81559 - 500) * MiB
    assert gpu.uuid == "GPU-510529ef-fb74-69be-ea8a-5d5aef678539"  # no uuid column: matched by index


def test_count_mismatch_between_csv_and_xml() -> None:
    with pytest.raises(InputError) as excinfo:
        read_host_facts(H100 / "smi-query.csv", H200 / "smi-q.xml")
    assert error_line(excinfo) == (
        f"{H200 / 'smi-q.xml'}: gpu: lists 2 GPU(s) but {H100 / 'smi-query.csv'} lists 1; "
        "capture both on the same host"
    )


def test_uuid_mismatch_between_csv_and_xml(tmp_path: Path) -> None:
    xml = write(tmp_path, "q.xml", text(H100, "smi-q.xml").replace("GPU-510529ef", "GPU-00000000"))
    with pytest.raises(InputError) as excinfo:
        read_host_facts(H100 / "smi-query.csv", xml)
    line = error_line(excinfo)
    assert line.startswith(f"{xml}: uuid: GPUs [")
    assert "GPU-00000000-fb74" in line and "GPU-510529ef-fb74" in line


# --- topology -----------------------------------------------------------------------------------------


def pcie4_csv() -> str:
    rows = [f"{i}, NVIDIA L40S, 46068 MiB, 567 MiB" for i in range(4)]
    return "\n".join(["index, name, memory.total [MiB], memory.reserved [MiB]", *rows]) + "\n"


def test_topo_with_nic_columns_rows_and_legend() -> None:
    rows = parse_topo(text(PCIE4, "smi-topo.txt"))
    assert sorted(rows) == [0, 1, 2, 3]
    assert rows[0].links == {1: "PIX", 2: "SYS", 3: "SYS"}
    assert rows[2].links == {0: "SYS", 1: "SYS", 3: "PXB"}
    assert (rows[1].cpu_affinity, rows[1].numa_affinity) == ("0-23,48-71", "0")
    assert (rows[3].cpu_affinity, rows[3].numa_affinity) == ("24-47,72-95", "1")


def test_pcie_box_is_not_all_pairs_nvlink() -> None:
    facts = collect(pcie4_csv(), topo=text(PCIE4, "smi-topo.txt"))
    assert facts.gpu_count == 4
    assert facts.gpus[3].links == {0: "SYS", 1: "SYS", 2: "PXB"}
    assert not facts.all_pairs_nvlink


def test_nvlink_on_some_pairs_only_is_not_all_pairs() -> None:
    topo = text(PCIE4, "smi-topo.txt").replace("PIX", "NV4")  # GPU0-GPU1 on NVLink, the rest not
    facts = collect(pcie4_csv(), topo=topo)
    assert facts.gpus[0].links[1] == "NV4"
    assert not facts.all_pairs_nvlink


def test_topo_pasted_from_terminal_with_spaces() -> None:
    pasted = text(H200, "smi-topo.txt").expandtabs(8).replace("\x1b[4m", "").replace("\x1b[0m", "")
    rows = parse_topo(pasted)
    assert rows[0].links == {1: "NV18"}
    assert (rows[1].cpu_affinity, rows[1].numa_affinity) == ("0-31", "0")


def test_topo_gpu_count_differs_from_gpus() -> None:
    with pytest.raises(InputError) as excinfo:
        read_host_facts(H100 / "smi-query.csv", None, H200 / "smi-topo.txt")
    assert error_line(excinfo) == (
        f"{H200 / 'smi-topo.txt'}: GPU rows: rows for GPUs [0, 1] but {H100 / 'smi-query.csv'} lists [0]; "
        "capture both on the same host"
    )


def test_topo_unparsable_header(tmp_path: Path) -> None:
    topo = write(tmp_path, "topo.txt", "GPU0 GPU1 CPU Affinity\nGPU0 X NV18 0-31\n")
    with pytest.raises(InputError) as excinfo:
        read_host_facts(H200 / "smi-query.csv", None, topo)
    assert error_line(excinfo) == (
        f"{topo}: line 1: the header names no GPU<n> columns; expected nvidia-smi topo -m output"
    )


def test_topo_row_missing_is_caught() -> None:
    cut = text(PCIE4, "smi-topo.txt").replace("\nGPU3\t", "\nGPUX\t")  # GPU3's row no longer a GPU row
    with pytest.raises(InputError) as excinfo:
        parse_topo(cut, "topo.txt")
    assert error_line(excinfo) == "topo.txt: GPU rows: rows for GPUs [0, 1, 2] but columns for [0, 1, 2, 3]"


def test_topo_misaligned_row_is_caught() -> None:
    shifted = text(H200, "smi-topo.txt").replace("GPU1\tNV18\t X ", "GPU1\t X \tNV18")
    with pytest.raises(InputError) as excinfo:
        parse_topo(shifted, "topo.txt")
    assert error_line(excinfo) == "topo.txt: line 3, GPU0: 'X' is not a link type here"


# --- JSON, table, files -------------------------------------------------------------------------------


def test_json_round_trip(tmp_path: Path) -> None:
    facts = read_host_facts(*host_files(H200))
    path = write(tmp_path, "host-facts.json", facts.model_dump_json(indent=2))
    shape = json.loads(path.read_text(encoding="utf-8"))
    assert set(shape) == {"schema_version", "driver_version", "cuda_version", "gpus", "probe"}
    assert shape["schema_version"] == 1
    assert shape["gpus"][0]["links"] == {"1": "NV18"}
    assert shape["gpus"][0]["memory_usable_bytes"] == H200_USABLE
    loaded = HostFacts.model_validate_json(path.read_text(encoding="utf-8"))
    assert loaded == facts
    assert loaded.gpus[0].links == {1: "NV18"} and loaded.all_pairs_nvlink


def test_json_with_unknown_key_is_rejected() -> None:
    shape = json.loads(read_host_facts(*host_files(H100)).model_dump_json())
    shape["gpus"][0]["memory_usable_byte"] = 1
    with pytest.raises(ValueError, match="memory_usable_byte"):
        HostFacts.model_validate(shape)


def render(facts: HostFacts) -> str:
    console = Console(width=200, record=True)
    console.print(facts_table(facts))
    return console.export_text()


def test_facts_table() -> None:
    out = render(read_host_facts(*host_files(H200)))
    assert "driver 580.159.04, CUDA 13.0" in out
    rows = [line for line in out.splitlines() if "NVIDIA H200" in line]
    assert len(rows) == 2
    for cell in ("140.40", "616", "139.80", "9.0", "Disabled", "NV18 x1"):
        assert cell in rows[0]
    assert "79.18" in render(read_host_facts(*host_files(H100)))


def test_facts_table_shows_probe_status() -> None:
    out = render(probe_local(runner=absent_runner))
    assert "probe absent: nvidia-smi not found on PATH" in out


def test_missing_file_names_path(tmp_path: Path) -> None:
    with pytest.raises(InputError) as excinfo:
        read_host_facts(tmp_path / "nope.csv")
    assert error_line(excinfo) == f"{tmp_path / 'nope.csv'}: no such file"


def test_neither_csv_nor_xml() -> None:
    with pytest.raises(InputError, match="need the --query-gpu CSV or the -q -x XML"):
        collect(None, None, text(H200, "smi-topo.txt"))


# --- probe_local --------------------------------------------------------------------------------------


def fixture_runner(host: Path, calls: list[tuple[list[str], dict[str, object]]]) -> Runner:
    outputs = dict(zip(PROBE_COMMANDS.values(), ("smi-query.csv", "smi-q.xml", "smi-topo.txt"), strict=True))

    def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append((cmd, kwargs))
        return subprocess.CompletedProcess(cmd, 0, text(host, outputs[tuple(cmd)]), "")

    return run


def absent_runner(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    raise FileNotFoundError(2, "No such file or directory", cmd[0])


def test_probe_local_runs_nvidia_smi_and_parses() -> None:
    calls: list[tuple[list[str], dict[str, object]]] = []
    facts = probe_local(runner=fixture_runner(H200, calls), timeout=7)
    assert facts == read_host_facts(*host_files(H200))
    assert [cmd for cmd, _ in calls] == [list(c) for c in PROBE_COMMANDS.values()]
    query = calls[0][0][1]
    for field in ("index", "uuid", "memory.total", "memory.reserved", "compute_cap", "mig.mode.current"):
        assert field in query.removeprefix("--query-gpu=").split(",")
    assert all(kw["timeout"] == 7 and kw["capture_output"] for _, kw in calls)


def test_probe_local_absent() -> None:
    facts = probe_local(runner=absent_runner)
    assert facts.gpus == []
    assert (facts.probe.status, facts.probe.detail) == ("absent", "nvidia-smi not found on PATH")


def test_probe_local_driver_not_loaded() -> None:
    def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        stderr = (
            "\nFailed to initialize NVML: Driver/library version mismatch\nNVML library version: 580.159\n"
        )
        return subprocess.CompletedProcess(cmd, 9, "", stderr)

    facts = probe_local(runner=run)
    assert facts.gpus == []
    assert facts.probe.status == "failed"
    assert facts.probe.detail == (
        "nvidia-smi --query-gpu: exit 9: Failed to initialize NVML: Driver/library version mismatch"
    )


def test_probe_local_failure_reported_on_stdout() -> None:
    msg = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."

    def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(cmd, 9, msg + "\n", "")

    assert probe_local(runner=run).probe.detail.endswith(f"exit 9: {msg}")


def test_probe_local_later_command_failing_gives_no_gpus() -> None:
    calls: list[tuple[list[str], dict[str, object]]] = []
    real = fixture_runner(H200, calls)

    def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        if cmd[1] == "topo":
            return subprocess.CompletedProcess(cmd, 3, "", "topology not available\n")
        return real(cmd, **kwargs)

    facts = probe_local(runner=run)
    assert (facts.probe.status, facts.gpus) == ("failed", [])
    assert facts.probe.detail == "nvidia-smi topo -m: exit 3: topology not available"


def test_probe_local_unparsable_output_names_command() -> None:
    calls: list[tuple[list[str], dict[str, object]]] = []
    real = fixture_runner(H100, calls)

    def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        done = real(cmd, **kwargs)
        return subprocess.CompletedProcess(cmd, 0, done.stdout[:300] if cmd[1] == "-q" else done.stdout, "")

    with pytest.raises(InputError) as excinfo:
        probe_local(runner=run)
    assert error_line(excinfo).startswith("nvidia-smi -q -x: line ")


def test_probe_local_timeout() -> None:
    def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        raise subprocess.TimeoutExpired(cmd, kwargs["timeout"])  # type: ignore[arg-type]

    facts = probe_local(runner=run, timeout=5)
    assert (facts.probe.status, facts.gpus) == ("failed", [])
    assert facts.probe.detail == "nvidia-smi --query-gpu: no answer within 5 s"


# --- bad input: one line naming the file and the field ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("q.csv", "", "line 1: file is empty; expected the output of nvidia-smi --query-gpu"),
        (
            "q.csv",
            " \n\t\n",
            "line 1: file is only whitespace; expected the output of nvidia-smi --query-gpu",
        ),
        ("q.xml", "", "line 1: file is empty; expected the output of nvidia-smi -q -x"),
        ("topo.txt", "\n \n", "line 1: file is only whitespace; expected the output of nvidia-smi topo -m"),
    ],
)
def test_empty_inputs(tmp_path: Path, name: str, content: str, expected: str) -> None:
    path = write(tmp_path, name, content)
    kinds = {
        "q.csv": (path, None, None),
        "q.xml": (None, path, None),
        "topo.txt": (H100 / "smi-query.csv", None, path),
    }
    with pytest.raises(InputError) as excinfo:
        read_host_facts(*kinds[name])
    assert error_line(excinfo).startswith(f"{path}: {expected}")


def test_truncated_csv(tmp_path: Path) -> None:
    real = text(H200, "smi-query.csv")
    path = write(tmp_path, "q.csv", real[: real.index("143771 MiB", 400)])  # cut inside the second GPU's row
    with pytest.raises(InputError) as excinfo:
        read_host_facts(path)
    assert error_line(excinfo) == f"{path}: line 3: 5 fields where the header has 15; is the file cut short?"


def test_csv_without_header_is_rejected() -> None:
    path = H100 / "smi-query-nounits.csv"
    with pytest.raises(InputError) as excinfo:
        read_host_facts(path)
    line = error_line(excinfo)
    assert line.startswith(f"{path}: line 1: a header row is needed, got '0, NVIDIA H100")
    assert line.endswith("capture with --format=csv, not noheader")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc MiB", "not a whole number of MiB: 'abc MiB'"),
        ("81559.5 MiB", "not a whole number of MiB: '81559.5 MiB'"),
        ("81559 KiB", "unit 'KiB' in '81559 KiB'; nvidia-smi reports memory in MiB"),
        ("81559 bananas", "unit 'bananas' in '81559 bananas'; nvidia-smi reports memory in MiB"),
    ],
)
def test_bad_memory_value(value: str, message: str) -> None:
    csv_text = text(H100, "smi-query.csv").replace("81559 MiB", value, 1)
    with pytest.raises(InputError) as excinfo:
        parse_query_csv(csv_text, "q.csv")
    assert error_line(excinfo) == f"q.csv: line 2, memory.total [MiB]: {message}"


def test_header_with_other_memory_unit() -> None:
    csv_text = "index, name, memory.total [KiB]\n0, NVIDIA H100 80GB HBM3, 83516416\n"
    with pytest.raises(InputError) as excinfo:
        parse_query_csv(csv_text, "q.csv")
    assert (
        error_line(excinfo)
        == "q.csv: memory.total [KiB]: a unit other than MiB, which nvidia-smi reports memory in"
    )


@pytest.mark.parametrize("column", ["memory.total [MiB]", "index", "name"])
def test_missing_required_column(column: str) -> None:
    real = text(H100, "smi-query.csv").splitlines()
    keep = [i for i, cell in enumerate(real[0].split(", ")) if cell != column]
    csv_text = "\n".join(", ".join(line.split(", ")[i] for i in keep) for line in real) + "\n"
    with pytest.raises(InputError) as excinfo:
        parse_query_csv(csv_text, "q.csv")
    field = column.split(" ")[0]
    assert error_line(excinfo) == f"q.csv: {field}: column missing from the header row; add it to --query-gpu"


def test_duplicate_gpu_index() -> None:
    csv_text = text(H200, "smi-query.csv").replace("\n1, GPU-6f26", "\n0, GPU-6f26")
    with pytest.raises(InputError) as excinfo:
        parse_query_csv(csv_text, "q.csv")
    assert error_line(excinfo) == "q.csv: line 3, index: GPU index 0 again; first on line 2"


def test_malformed_xml(tmp_path: Path) -> None:
    path = write(tmp_path, "q.xml", text(H100, "smi-q.xml").replace("</product_name>", "</product>", 1))
    with pytest.raises(InputError) as excinfo:
        read_host_facts(None, path)
    assert error_line(excinfo) == f"{path}: line 9: not well-formed XML (mismatched tag); is it cut short?"


def test_truncated_xml(tmp_path: Path) -> None:
    real = text(H200, "smi-q.xml")
    path = write(tmp_path, "q.xml", real[: len(real) // 2])
    with pytest.raises(InputError) as excinfo:
        read_host_facts(None, path)
    line = error_line(excinfo)
    assert line.startswith(f"{path}: line ") and "not well-formed XML" in line


def test_xml_without_gpu(tmp_path: Path) -> None:
    real = text(H100, "smi-q.xml")
    path = write(tmp_path, "q.xml", real[: real.index("\t<gpu ")] + "</nvidia_smi_log>\n")
    with pytest.raises(InputError) as excinfo:
        read_host_facts(None, path)
    assert error_line(excinfo) == f"{path}: gpu: no <gpu> element: nvidia-smi saw no GPU here"


def test_xml_memory_total_unknown(tmp_path: Path) -> None:
    real = text(H200, "smi-q.xml")
    second = real.index("<total>143771 MiB</total>", real.index("<minor_number>1<"))
    path = write(tmp_path, "q.xml", real[:second] + "<total>N/A</total>" + real[second + 25 :])
    with pytest.raises(InputError) as excinfo:
        read_host_facts(None, path)
    assert error_line(excinfo) == f"{path}: gpu[1].fb_memory_usage.total: missing or unknown"
