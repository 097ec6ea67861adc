"""Regression tests for a user probe of tritonfleet.host.gpus, one section per defect class:

1. host-facts JSON read back without its invariants; 2. a MIG-enabled GPU planned as a whole GPU;
3. GPUs labelled by position instead of their nvidia-smi index; 4. CSV shapes nvidia-smi or an editor
produce (BOM, CRLF, blank lines, bracketed non-values, spaced header); 5. the crashes that the property
tests in test_host_properties.py found, each pinned to the input that showed it.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from tritonfleet.errors import InputError
from tritonfleet.host.gpus import (
    HostFacts,
    collect,
    facts_table,
    load_facts,
    parse_query_csv,
    parse_smi_xml,
    parse_topo,
    probe_local,
    read_host_facts,
)
from tritonfleet.limits import MAX_GPU_BYTES
from tritonfleet.units import MiB

from helpers import GPU_HOSTS, MODEL_REPOSITORY, error_line, write

H100, H200, PCIE4 = GPU_HOSTS / "h100-x1", GPU_HOSTS / "h200-x2", GPU_HOSTS / "synthetic-pcie-x4-nic2"
H200_UUIDS = ["GPU-ee32b95a-7d65-1510-d0c2-bb26f987df67", "GPU-6f263078-db1c-ef99-ea1c-632f15046016"]
H200_TOTAL = 143771 * MiB
EIGHT_B = "llama-3.1-8b-instruct"
NOT_FACTS = "not host facts from `tritonfleet facts --format json`"


def text(host: Path, name: str) -> str:
    return (host / name).read_text(encoding="utf-8")


def render(facts: HostFacts) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(facts_table(facts))
    return console.export_text()


def table_rows(facts: HostFacts) -> list[list[str]]:
    """The body rows of the facts table, as cells."""
    lines = [line for line in render(facts).splitlines() if line.startswith("│")]
    return [[c.strip() for c in line.strip("│").split("│")] for line in lines]


def h200_facts() -> dict[str, Any]:
    return json.loads(
        read_host_facts(H200 / "smi-query.csv", H200 / "smi-q.xml", H200 / "smi-topo.txt").model_dump_json()
    )


# --- 1. facts files that `tritonfleet facts` could never have written ---------------------------------


def gpu(n: int, **values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda facts: facts["gpus"][n].update(values)


def top(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda facts: facts.update(values)


def both(*edits: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def edit(facts: dict[str, Any]) -> None:
        for e in edits:
            e(facts)

    return edit


REFUSED = [
    pytest.param(
        gpu(0, memory_usable_bytes=143772 * MiB),
        "gpus.0.memory_usable_bytes",
        "usable 150755868672 bytes (143772 MiB) is more than memory_total_bytes 150754820096 bytes "
        "(143771 MiB)",
        id="usable-above-total",
    ),
    pytest.param(
        gpu(1, memory_usable_bytes=143156 * MiB),  # memory.free taken for usable: 616 + 143156 > 143771
        "gpus.1.memory_usable_bytes",
        "reserved 645922816 bytes (616 MiB) + usable 150109945856 bytes (143156 MiB) is more than total "
        "150754820096 bytes (143771 MiB); usable is total - reserved",
        id="reserved-plus-usable-above-total",
    ),
    pytest.param(
        gpu(0, memory_used_bytes=H200_TOTAL + 1),
        "gpus.0.memory_used_bytes",
        "used 150754820097 bytes is more than memory_total_bytes 150754820096 bytes (143771 MiB)",
        id="used-above-total",
    ),
    pytest.param(
        gpu(1, memory_free_bytes=2 * H200_TOTAL),
        "gpus.1.memory_free_bytes",
        "free 301509640192 bytes (287542 MiB) is more than memory_total_bytes 150754820096 bytes "
        "(143771 MiB)",
        id="free-above-total",
    ),
    pytest.param(
        gpu(0, memory_total_bytes=MAX_GPU_BYTES + MiB),
        "gpus.0.memory_total_bytes",
        "17592187092992 bytes is more than 16 TiB; no GPU has that much memory",
        id="total-above-16-TiB",
    ),
    pytest.param(
        gpu(0, memory_total_bytes=10**30),
        "gpus.0.memory_total_bytes",
        f"{10**30} bytes is more than 16 TiB; no GPU has that much memory",
        id="total-10^30",
    ),
    pytest.param(
        both(gpu(0, links={}), gpu(1, index=0, links={})),
        "gpus.1.index",
        "GPU index 0 again; gpus.0 has it too",
        id="index-twice",
    ),
    pytest.param(
        gpu(1, uuid=H200_UUIDS[0]),
        "gpus.1.uuid",
        f"GPU uuid {H200_UUIDS[0]} again; gpus.0 has it too",
        id="uuid-twice",
    ),
    pytest.param(
        gpu(0, links={"0": "NV18", "1": "NV18"}),
        "gpus.0.links.0",
        "a link from GPU 0 to itself; links name the other GPUs",
        id="link-to-itself",
    ),
    pytest.param(
        gpu(1, links={"0": "NV18", "7": "NV18"}),
        "gpus.1.links.7",
        "GPU 7 is not a GPU of this host (its GPUs: 0, 1)",
        id="link-to-another-host",
    ),
    pytest.param(
        gpu(0, links={"01": "NV18"}), "gpus.0.links.01", "key '01' is not a GPU index", id="link-key-01"
    ),
    pytest.param(
        gpu(0, links={"1": "X"}),
        "gpus.0.links.1",
        "'X' is not a link type from nvidia-smi topo -m (NV18, SYS, PIX, ...)",
        id="link-X",
    ),
    pytest.param(
        gpu(0, compute_capability="9"),
        "gpus.0.compute_capability",
        "'9' is not a compute capability such as '9.0' (major.minor)",
        id="cc-9",
    ),
    pytest.param(
        gpu(1, compute_capability="Hopper"),
        "gpus.1.compute_capability",
        "'Hopper' is not a compute capability such as '9.0' (major.minor)",
        id="cc-word",
    ),
    pytest.param(
        gpu(0, mig_mode="enabled"),
        "gpus.0.mig_mode",
        "'enabled' is not a MIG mode: 'Enabled', 'Disabled' or null (no MIG)",
        id="mig-lowercase",
    ),
    pytest.param(gpu(0, name=" "), "gpus.0.name", "the GPU name is empty", id="name-blank"),
    pytest.param(
        top(probe={"status": "absent", "detail": "nvidia-smi not found on PATH"}),
        "probe.status",
        "probe absent, yet 2 GPU(s) listed; a probe that fails records no GPU",
        id="absent-with-gpus",
    ),
    pytest.param(
        top(probe={"status": "failed", "detail": "nvidia-smi -q -x: exit 9: ..."}),
        "probe.status",
        "probe failed, yet 2 GPU(s) listed; a probe that fails records no GPU",
        id="failed-with-gpus",
    ),
    pytest.param(
        top(schema_version=2),
        "schema_version",
        "version 2 is not 1, the one this tritonfleet reads",
        id="schema-2",
    ),
    pytest.param(gpu(0, index="0"), "gpus.0.index", "Input should be a valid integer", id="index-as-text"),
    pytest.param(gpu(0, index=True), "gpus.0.index", "Input should be a valid integer", id="index-as-bool"),
    pytest.param(
        gpu(0, memory_total_bytes=float(H200_TOTAL)),
        "gpus.0.memory_total_bytes",
        "Input should be a valid integer",
        id="total-as-float",
    ),
    pytest.param(
        both(gpu(0, index=-1), gpu(1, links={})),
        "gpus.0.index",
        "Input should be greater than or equal to 0",
        id="index-negative",
    ),
]


@pytest.mark.parametrize(("edit", "field", "message"), REFUSED)
def test_facts_it_could_never_have_written_are_refused(
    tmp_path: Path, edit: Callable[[dict[str, Any]], None], field: str, message: str
) -> None:
    facts = h200_facts()
    edit(facts)
    path = write(tmp_path, "host-facts.json", json.dumps(facts))
    with pytest.raises(InputError) as excinfo:
        load_facts(path)
    assert error_line(excinfo) == f"{path}: {field}: {NOT_FACTS}: {message}"


def no_nvidia_smi(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    raise FileNotFoundError(2, "No such file or directory", cmd[0])


def test_not_json_names_no_field(tmp_path: Path) -> None:
    path = write(tmp_path, "host-facts.json", '{"gpus": [')
    with pytest.raises(InputError) as excinfo:
        load_facts(path)
    assert error_line(excinfo).startswith(f"{path}: {NOT_FACTS}: Invalid JSON: EOF while parsing")


@pytest.mark.parametrize(
    "facts",
    [
        pytest.param(HostFacts(), id="ok-no-gpus"),
        pytest.param(probe_local(runner=no_nvidia_smi), id="absent"),
        pytest.param(
            read_host_facts(H100 / "smi-query.csv", H100 / "smi-q.xml", H100 / "smi-topo.txt"), id="h100"
        ),
        pytest.param(
            read_host_facts(H200 / "smi-query.csv", H200 / "smi-q.xml", H200 / "smi-topo.txt"), id="h200"
        ),
        pytest.param(
            collect(
                "index, name, memory.total [MiB], memory.reserved [MiB]\n"
                + "".join(f"{i}, NVIDIA L40S, 46068 MiB, 567 MiB\n" for i in range(4)),
                topo=text(PCIE4, "smi-topo.txt"),
            ),
            id="pcie-x4",
        ),
    ],
)
def test_what_tritonfleet_facts_writes_is_read_back(tmp_path: Path, facts: HostFacts) -> None:
    path = write(tmp_path, "host-facts.json", facts.model_dump_json(indent=2))
    assert load_facts(path) == facts
    # An editor's byte-order mark is no reason to refuse the file.
    assert load_facts(write(tmp_path, "bom.json", b"\xef\xbb\xbf" + path.read_bytes())) == facts


def test_plan_refuses_impossible_facts_in_one_line(cli, tmp_path: Path) -> None:
    facts = h200_facts()
    facts["gpus"][0]["memory_usable_bytes"] = 143772 * MiB
    path = write(tmp_path, "host-facts.json", json.dumps(facts))
    result = cli("plan", MODEL_REPOSITORY, "--host-facts", path, "--model", EIGHT_B)
    assert result.code == 2
    assert result.out == ""
    assert result.err.count("\n") == 1
    assert f"{path}: gpus.0.memory_usable_bytes: {NOT_FACTS}: usable" in result.err


# --- 2. MIG: recorded as nvidia-smi prints it, and never planned as a whole GPU ------------------------


def h100_csv_with_mig(mode: str) -> str:
    csv_text = text(H100, "smi-query.csv")
    assert csv_text.count(", Enabled, Disabled, 700.00 W") == 1  # persistence_mode, mig.mode.current
    return csv_text.replace(", Enabled, Disabled, 700.00 W", f", Enabled, {mode}, 700.00 W")


@pytest.mark.parametrize(
    ("cell", "recorded"),
    [
        ("Enabled", "Enabled"),
        ("Disabled", "Disabled"),
        ("enabled", "Enabled"),
        ("DISABLED", "Disabled"),
        ("[N/A]", None),
        ("N/A", None),
        ("[Not Supported]", None),
    ],
)
def test_csv_mig_mode(cell: str, recorded: str | None) -> None:
    assert collect(h100_csv_with_mig(cell)).gpus[0].mig_mode == recorded


def test_csv_mig_mode_neither_enabled_nor_disabled() -> None:
    with pytest.raises(InputError) as excinfo:
        parse_query_csv(h100_csv_with_mig("Pending"), "q.csv")
    assert error_line(excinfo) == (
        "q.csv: line 2, mig.mode.current: MIG mode 'Pending' is neither Enabled nor Disabled; "
        "the planner must know which"
    )


def h100_xml_with_mig(mode: str) -> str:
    xml = text(H100, "smi-q.xml")
    assert xml.count("<current_mig>Disabled</current_mig>") == 1
    return xml.replace("<current_mig>Disabled</current_mig>", f"<current_mig>{mode}</current_mig>")


@pytest.mark.parametrize(
    ("cell", "recorded"), [("Enabled", "Enabled"), ("Disabled", "Disabled"), ("N/A", None)]
)
def test_xml_mig_mode(cell: str, recorded: str | None) -> None:
    assert collect(xml=h100_xml_with_mig(cell)).gpus[0].mig_mode == recorded


def test_xml_fills_mig_mode_the_csv_does_not_know() -> None:
    facts = collect(h100_csv_with_mig("[N/A]"), h100_xml_with_mig("Enabled"))
    assert facts.gpus[0].mig_mode == "Enabled"


def facts_file(cli, tmp_path: Path, csv_text: str) -> Path:
    """What `tritonfleet facts --format json` writes for this CSV."""
    capture = write(tmp_path, "smi-query.csv", csv_text)
    result = cli("facts", "--query-csv", capture, "--format", "json")
    assert result.code == 0, result.err
    return write(tmp_path, "host-facts.json", result.out)


def test_plan_refuses_a_mig_gpu(cli, tmp_path: Path) -> None:
    facts = facts_file(cli, tmp_path, h100_csv_with_mig("Enabled"))
    assert json.loads(facts.read_text())["gpus"][0]["mig_mode"] == "Enabled"
    result = cli("plan", MODEL_REPOSITORY, "--host-facts", facts, "--model", EIGHT_B)
    assert result.code == 2
    assert result.out == ""
    assert result.err.count("\n") == 1
    assert "mig_mode" in result.err and "MIG is enabled" in result.err


def test_plan_of_the_whole_repository_refuses_the_one_mig_gpu_of_four(cli, tmp_path: Path) -> None:
    head, row = text(H100, "smi-query.csv").splitlines()
    rows = [row.replace("GPU-510529ef", f"GPU-{i}10529ef").replace("0, ", f"{i}, ", 1) for i in range(4)]
    rows[3] = rows[3].replace(", Enabled, Disabled, 700.00 W", ", Enabled, Enabled, 700.00 W")
    facts = facts_file(cli, tmp_path, "\n".join([head, *rows]) + "\n")
    result = cli("plan", MODEL_REPOSITORY, "--host-facts", facts)
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "gpus[3].mig_mode" in result.err  # the GPU by its index


# --- 3. GPUs labelled by their nvidia-smi index, wherever they are listed --------------------------------


def h200_csv(indices: tuple[int, int], *, drop: tuple[str, ...] = ()) -> str:
    """The H200 capture with its GPUs renumbered (as `nvidia-smi -i 2,5` on a larger host would list
    them), the highest index first, and some columns dropped."""
    head, *rows = text(H200, "smi-query.csv").splitlines()
    renumbered = [f"{i}{rows[n][1:]}" for n, i in enumerate(indices)]
    renumbered.sort(key=lambda r: -int(r.split(",")[0]))  # listed out of order
    cols = head.split(", ")
    keep = [n for n, c in enumerate(cols) if c not in drop]
    return "\n".join(", ".join(line.split(", ")[n] for n in keep) for line in [head, *renumbered]) + "\n"


def h200_topo(indices: tuple[int, int]) -> str:
    return text(H200, "smi-topo.txt").replace("GPU0", f"GPU{indices[0]}").replace("GPU1", f"GPU{indices[1]}")


def test_gpus_2_and_5_keep_their_indices_through_merge_topo_and_table(tmp_path: Path) -> None:
    # No pci.bus_id or reserved column: the XML fills them, matched to the right GPU by UUID.
    csv_text = h200_csv((2, 5), drop=("pci.bus_id", "memory.reserved [MiB]"))
    facts = collect(csv_text, text(H200, "smi-q.xml"), h200_topo((2, 5)))
    assert [(g.index, g.uuid, g.pci_bus_id) for g in facts.gpus] == [
        (2, H200_UUIDS[0], "00000000:00:06.0"),
        (5, H200_UUIDS[1], "00000000:00:07.0"),
    ]
    assert [g.memory_reserved_bytes for g in facts.gpus] == [616 * MiB, 616 * MiB]
    assert [g.links for g in facts.gpus] == [{5: "NV18"}, {2: "NV18"}]
    assert facts.all_pairs_nvlink
    assert [row[0] for row in table_rows(facts)] == ["2", "5"]
    path = write(tmp_path, "host-facts.json", facts.model_dump_json())
    assert load_facts(path) == facts


def test_plan_labels_gpus_by_index(cli, tmp_path: Path) -> None:
    capture = write(tmp_path, "q.csv", h200_csv((2, 5)))
    topo = write(tmp_path, "topo.txt", h200_topo((2, 5)))
    result = cli(
        "facts", "--query-csv", capture, "--xml", H200 / "smi-q.xml", "--topo", topo, "--format", "json"
    )
    assert result.code == 0, result.err
    facts = write(tmp_path, "host-facts.json", result.out)
    result = cli("plan", MODEL_REPOSITORY, "--host-facts", facts, "--model", EIGHT_B, "--format", "json")
    assert result.code == 0, result.err
    plan = json.loads(result.out)
    assert plan["models"][0]["gpus"] == [2]
    assert set(plan["surplus_gib"]) == {"2", "5"}


def test_without_uuids_the_xml_is_matched_by_pci_bus_id() -> None:
    facts = collect(h200_csv((2, 5), drop=("uuid",)), text(H200, "smi-q.xml"))
    assert [(g.index, g.uuid, g.pci_bus_id) for g in facts.gpus] == [
        (2, H200_UUIDS[0], "00000000:00:06.0"),
        (5, H200_UUIDS[1], "00000000:00:07.0"),
    ]


def test_without_uuids_or_bus_ids_an_xml_order_is_not_taken_for_indices_2_and_5() -> None:
    with pytest.raises(InputError) as excinfo:
        collect(
            h200_csv((2, 5), drop=("uuid", "pci.bus_id")),
            text(H200, "smi-q.xml"),
            query_source="q.csv",
            xml_source="q.xml",
        )
    assert error_line(excinfo) == (
        "q.xml: index: GPUs [0, 1, 2, 5] are in only one of this and q.csv; capture both on the same host"
    )


def test_errors_name_the_gpu_by_its_index() -> None:
    used = h200_csv((2, 5)).replace("143771 MiB, 616 MiB, 0 MiB", "143771 MiB, 616 MiB, 143772 MiB", 1)
    assert used.index("143772") > used.index("\n5, ")  # the edit is in GPU 5's row, listed first
    with pytest.raises(InputError) as excinfo:
        collect(used, query_source="q.csv")
    assert error_line(excinfo) == (
        "q.csv: gpu[5].memory_used_bytes: used 150755868672 bytes (143772 MiB) is more than "
        "memory_total_bytes 150754820096 bytes (143771 MiB)"
    )
    no_reserved = h200_csv((2, 5), drop=("memory.reserved [MiB]", "memory.free [MiB]"))
    with pytest.raises(InputError) as excinfo:
        collect(no_reserved, query_source="q.csv")
    assert error_line(excinfo).startswith("q.csv: gpu[2].memory.reserved: unknown")


def test_topo_of_other_indices_is_refused() -> None:
    with pytest.raises(InputError) as excinfo:
        collect(
            h200_csv((2, 5)), topo=text(H200, "smi-topo.txt"), query_source="q.csv", topo_source="topo.txt"
        )
    assert error_line(excinfo) == (
        "topo.txt: GPU rows: rows for GPUs [0, 1] but q.csv lists [2, 5]; capture both on the same host"
    )


# --- 4. CSV as nvidia-smi, Windows tools and editors write it ------------------------------------------


def h200_reference() -> HostFacts:
    return collect(text(H200, "smi-query.csv"))


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda t: "\ufeff" + t, id="bom"),
        pytest.param(lambda t: t.replace("\n", "\r\n"), id="crlf"),
        pytest.param(lambda t: t.replace("\n", "\r"), id="cr"),
        pytest.param(lambda t: t + "\n\n  \n\t\n", id="trailing-blank-lines"),
        pytest.param(lambda t: "\ufeff" + t.replace("\n", "\r\n") + "\r\n\r\n", id="bom-crlf-blank"),
        pytest.param(lambda t: "\n\n" + t, id="leading-blank-lines"),
    ],
)
def test_csv_variants_parse_as_the_original(variant: Callable[[str], str]) -> None:
    assert collect(variant(text(H200, "smi-query.csv"))) == h200_reference()


def test_csv_file_with_bom_and_crlf(tmp_path: Path) -> None:
    raw = text(H200, "smi-query.csv").replace("\n", "\r\n").encode("utf-8")
    path = write(tmp_path, "q.csv", b"\xef\xbb\xbf" + raw)
    assert read_host_facts(path) == h200_reference()


def test_xml_and_topo_with_bom() -> None:
    xml, topo = text(H200, "smi-q.xml"), text(H200, "smi-topo.txt")
    plain = collect(xml=xml, topo=topo)
    assert collect(xml="\ufeff" + xml, topo="\ufeff" + topo.replace("\n", "\r\n")) == plain
    assert parse_smi_xml("\ufeff" + xml).gpus == parse_smi_xml(xml).gpus
    assert parse_topo("\ufeff" + topo) == parse_topo(topo)


def test_header_with_extra_spaces() -> None:
    csv_text = (
        "  index ,uuid,   name  ,memory.total   [MiB] , memory.reserved [ MiB ],compute_cap ,"
        "mig.mode.current\n"
        f"0, {H200_UUIDS[0]}, NVIDIA H200, 143771 MiB, 616 MiB, 9.0, Disabled\n"
    )
    gpu = collect(csv_text).gpus[0]
    assert (gpu.index, gpu.uuid, gpu.name) == (0, H200_UUIDS[0], "NVIDIA H200")
    assert (gpu.memory_total_bytes, gpu.memory_reserved_bytes) == (H200_TOTAL, 616 * MiB)
    assert (gpu.compute_capability, gpu.mig_mode) == ("9.0", "Disabled")


@pytest.mark.parametrize(
    "non_value", ["[N/A]", "[Not Supported]", "[Insufficient Permissions]", "[Unknown Error]"]
)
def test_bracketed_non_values_are_unknown(non_value: str) -> None:
    csv_text = (
        "index, uuid, name, pci.bus_id, memory.total [MiB], memory.reserved [MiB], memory.used [MiB], "
        "memory.free [MiB], driver_version, compute_cap, mig.mode.current\n"
        f"0, {non_value}, NVIDIA H100 80GB HBM3, {non_value}, 81559 MiB, {non_value}, 0 MiB, 81079 MiB, "
        f"{non_value}, {non_value}, {non_value}\n"
    )
    facts = collect(csv_text)
    gpu = facts.gpus[0]
    assert (gpu.uuid, gpu.pci_bus_id, gpu.memory_reserved_bytes, gpu.compute_capability, gpu.mig_mode) == (
        (None,) * 5
    )
    assert facts.driver_version is None
    assert gpu.memory_usable_bytes == 81079 * MiB  # used + free


def test_required_value_not_permitted_names_the_cell() -> None:
    csv_text = text(H100, "smi-query.csv").replace("81559 MiB", "[Insufficient Permissions]")
    with pytest.raises(InputError) as excinfo:
        parse_query_csv(csv_text, "q.csv")
    assert error_line(excinfo) == (
        "q.csv: line 2, memory.total [MiB]: memory.total is unknown ('[Insufficient Permissions]')"
    )


# --- 5. what the property tests found: crashes, and values taken that no GPU has; now one line each -----

H100_ROW = "index, name, memory.total [MiB], memory.reserved [MiB]\n{index}, NVIDIA H100, {total}, 480 MiB\n"


@pytest.mark.parametrize(
    ("csv_text", "expected"),
    [
        pytest.param(  # was csv.Error: field larger than field limit (131072)
            "x" * 140_000 + "\n",
            "q.csv: line 1: not nvidia-smi CSV: field larger than field limit (131072)",
            id="field-past-csv-limit",
        ),
        pytest.param(  # was ValueError from int('²'): str.isdigit takes superscripts
            H100_ROW.format(index="²", total="81559 MiB"),
            "q.csv: line 2, index: GPU index '²' is not a number",
            id="index-superscript",
        ),
        pytest.param(  # was ValueError: int() refuses more than 4300 digits
            H100_ROW.format(index="9" * 4400, total="81559 MiB"),
            f"q.csv: line 2, index: GPU index '{'9' * 30}' is above 1023; not a GPU here",
            id="index-4400-digits",
        ),
        pytest.param(  # was ValueError: int() refuses more than 4300 digits
            H100_ROW.format(index="0", total="1" + "0" * 4300 + " MiB"),
            f"q.csv: line 2, memory.total [MiB]: '{('1' + '0' * 4300)[:50]}' is more than 16 TiB; "
            "no GPU has that much memory",
            id="total-4301-digits",
        ),
        pytest.param(  # was accepted: a GPU of 10^30 MiB
            H100_ROW.format(index="0", total=f"{10**30} MiB"),
            f"q.csv: line 2, memory.total [MiB]: '{10**30} MiB' is more than 16 TiB; "
            "no GPU has that much memory",
            id="total-10^30-MiB",
        ),
        pytest.param(  # was 'gpu[0].memory: usable 0 MiB outside total 0 MiB', naming no column
            "index, name, memory.total [MiB], memory.used [MiB], memory.free [MiB]\n"
            "0, H100, 0 MiB, 0 MiB, 0 MiB\n",
            "q.csv: line 2, memory.total [MiB]: memory.total is 0 MiB; a GPU has memory",
            id="total-0",
        ),
        pytest.param(  # was facts whose JSON could not be written (PydanticSerializationError)
            H100_ROW.format(index="0", total="81559 MiB").replace("NVIDIA", "NV\udc80IDIA"),
            "q.csv: line 2: not text: a lone UTF-16 surrogate",
            id="lone-surrogate",
        ),
        pytest.param(  # was accepted, then a rich MarkupError from facts_table
            text(H100, "smi-query.csv").replace(", 9.0, ", ", 9.0[/], "),
            "q.csv: line 2, compute_cap: '9.0[/]' is not a compute capability such as 9.0",
            id="compute-cap-garbled",
        ),
        pytest.param(  # was a rich MarkupError from facts_table
            h100_csv_with_mig("x[/]"),
            "q.csv: line 2, mig.mode.current: MIG mode 'x[/]' is neither Enabled nor Disabled; "
            "the planner must know which",
            id="mig-markup",
        ),
        pytest.param(  # was accepted: two GPUs of one UUID, which the XML merge then matched to one
            text(H200, "smi-query.csv").replace(H200_UUIDS[1], H200_UUIDS[0]),
            f"q.csv: line 3, uuid: GPU UUID {H200_UUIDS[0]} again; first on line 2",
            id="uuid-twice",
        ),
    ],
)
def test_csv_found_by_properties(csv_text: str, expected: str) -> None:
    with pytest.raises(InputError) as excinfo:
        collect(csv_text, query_source="q.csv")
    assert error_line(excinfo) == expected


def test_header_cell_with_a_newline_stays_one_line() -> None:
    csv_text = 'index, name, "memory.total\n[KiB]"\n0, NVIDIA H100, 83516416\n'
    with pytest.raises(InputError) as excinfo:
        parse_query_csv(csv_text, "q.csv")
    assert error_line(excinfo) == (
        "q.csv: memory.total [KiB]: a unit other than MiB, which nvidia-smi reports memory in"
    )


def test_json_key_with_a_newline_stays_one_line(tmp_path: Path) -> None:
    # Found by the load_facts property: the unknown key became the error's field, newline and all.
    path = write(tmp_path, "host-facts.json", '{"\\n": null}')
    with pytest.raises(InputError) as excinfo:
        load_facts(path)
    assert error_line(excinfo) == f'{path}: "\\n": {NOT_FACTS}: Extra inputs are not permitted'


def test_csv_lone_carriage_returns_parse() -> None:
    # Was csv.Error: the reader got "\r"-separated lines as one line.
    facts = collect(text(H100, "smi-query.csv").replace("\n", "\r"))
    assert facts.gpus[0].memory_usable_bytes == (81559 - 480) * MiB


@pytest.mark.parametrize(
    ("topo", "expected"),
    [
        pytest.param(  # was ValueError: int() refuses more than 4300 digits
            "\tGPU0\tGPU1" + "0" * 4300 + "\nGPU0\t X \tNV18\n",
            f"topo.txt: line 1, GPU1{'0' * 26}: GPU index '1{'0' * 29}' is above 1023; not a GPU here",
            id="label-4301-digits",
        ),
        pytest.param(  # was accepted: GPU0 twice, and no links at all
            "\tGPU0\tGPU0\tCPU Affinity\nGPU0\t X \t X \t0-31\n",
            "topo.txt: line 1, GPU0: a second column for this GPU",
            id="column-twice",
        ),
        pytest.param(  # refused before too, but at no line; now where the row is
            "\tGPU0\tGPU1\nGPU0\t X \tNV18\nGPU1\tNV18\t X \nGPU7\tNV18\tNV18\n",
            "topo.txt: line 4: a row for GPU7, which has no column; columns for [0, 1]",
            id="row-without-column",
        ),
        pytest.param(  # was accepted into facts whose JSON could not be written
            text(H200, "smi-topo.txt") + "\udc80",
            "topo.txt: line 14: not text: a lone UTF-16 surrogate",
            id="lone-surrogate",
        ),
    ],
)
def test_topo_found_by_properties(topo: str, expected: str) -> None:
    with pytest.raises(InputError) as excinfo:
        parse_topo(topo, "topo.txt")
    assert error_line(excinfo) == expected


def test_xml_with_a_lone_surrogate() -> None:
    # Was UnicodeEncodeError from ElementTree, which encodes the text to UTF-8 first.
    xml = text(H100, "smi-q.xml").replace("NVIDIA H100", "NVIDIA \udc80H100")
    with pytest.raises(InputError) as excinfo:
        parse_smi_xml(xml, "q.xml")
    assert error_line(excinfo) == "q.xml: line 9: not text: a lone UTF-16 surrogate"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "<total>81559 MiB</total>",
            "<total>0 MiB</total>",
            "gpu[0].fb_memory_usage.total: memory.total is 0 MiB",
        ),
        ("<total>81559 MiB</total>", f"<total>{10**30} MiB</total>", "gpu[0].fb_memory_usage.total: '1000"),
        (
            "<current_mig>Disabled</current_mig>",
            "<current_mig>x[/]</current_mig>",
            "gpu[0].mig_mode.current_mig",
        ),
    ],
)
def test_xml_values_found_by_properties(old: str, new: str, expected: str) -> None:
    xml = text(H100, "smi-q.xml")
    assert xml.count(old) == 1
    with pytest.raises(InputError) as excinfo:
        parse_smi_xml(xml.replace(old, new), "q.xml")
    assert error_line(excinfo).startswith(f"q.xml: {expected}")


def test_table_shows_markup_from_topo_as_text() -> None:
    # Was rich.errors.MarkupError where a value held "[/]", read as a closing tag; "[bold]0" would show as 0.
    topo = text(H100, "smi-topo.txt")
    cpu_numa = "\t0-15\t0\t"
    assert topo.count(cpu_numa) == 1
    facts = collect(text(H100, "smi-query.csv"), topo=topo.replace(cpu_numa, "\t0-15\t0[/]\t"))
    assert facts.gpus[0].numa_affinity == "0[/]"
    assert table_rows(facts)[0][-1] == "0[/]"


def test_probe_local_survives_bytes_that_are_not_utf8() -> None:
    # Was UnicodeDecodeError inside subprocess.run(text=True): nvidia-smi's bytes are not ours to vouch for.
    outputs = {
        "--query-gpu": b"index, name, memory.total [MiB], memory.reserved [MiB]\n"
        b"0, NVIDIA H\xff100, 81559 MiB, 480 MiB\n",
        "-q": (H100 / "smi-q.xml").read_bytes(),
        "topo": (H100 / "smi-topo.txt").read_bytes(),
    }

    def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        data = next(out for flag, out in outputs.items() if cmd[1].startswith(flag))
        script = f"import sys; sys.stdout.buffer.write({data!r})"
        return subprocess.run([sys.executable, "-c", script], **kwargs)

    facts = probe_local(runner=run)
    assert facts.gpus[0].name == "NVIDIA H\ufffd100"
    assert facts.gpus[0].memory_usable_bytes == (81559 - 480) * MiB


def test_mig_is_named_before_the_gpu_count(cli, tmp_path, h100_facts):
    # One MIG-enabled H100: the 70B model's four GPUs do not fit, but MIG is the first thing to fix.
    facts = json.loads(h100_facts.read_text())
    facts["gpus"][0]["mig_mode"] = "Enabled"
    path = tmp_path / "mig.json"
    path.write_text(json.dumps(facts))
    planned = cli("plan", MODEL_REPOSITORY, "--host-facts", path)
    assert planned.code == 2
    assert f"{path}: gpus[0].mig_mode: MIG is enabled" in planned.err
