"""A host's GPUs, read from what nvidia-smi prints.

Three pure parsers turn text into records: the `--query-gpu ... --format=csv` table, the `-q -x` XML and
the `topo -m` matrix. `collect` merges them into HostFacts, the typed facts that are written as JSON for
Ansible and read back by the renderer. Reading files and running nvidia-smi stay at the edges
(`read_host_facts`, `probe_local`), so every parser is tested on real captured output.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Literal

# Not defusedxml: the XML is a local file the operator captured, or nvidia-smi's own stdout.
from xml.etree import ElementTree

from pydantic import BaseModel, ConfigDict, Field
from rich.markup import escape
from rich.table import Table

from tritonfleet.errors import InputError

MIB = 1 << 20
GIB = 1 << 30
# What probe_local asks for, and every column the CSV parser reads; others are ignored.
QUERY_FIELDS = (
    *("index", "uuid", "name", "pci.bus_id", "memory.total", "memory.reserved", "memory.used"),
    *("memory.free", "driver_version", "compute_cap", "mig.mode.current"),
)
_REQUIRED_COLUMNS = ("index", "name", "memory.total")
# GpuRecord field -> CSV column / XML path, for the optional values.
_CSV_TEXT = {
    "uuid": "uuid",
    "pci_bus_id": "pci.bus_id",
    "compute_capability": "compute_cap",
    "mig_mode": "mig.mode.current",
}
_XML_TEXT = {"uuid": "uuid", "pci_bus_id": "pci/pci_bus_id", "mig_mode": "mig_mode/current_mig"}
_MEMORY_PARTS = ("reserved", "used", "free")
# --query-gpu accepts these spellings too.
_ALIASES = {"gpu_name": "name", "gpu_uuid": "uuid", "gpu_bus_id": "pci.bus_id"}
_HEADER_CELL = re.compile(r"(?P<name>[^\[\]]+?)\s*(?:\[(?P<unit>[^\]]*)\])?")
_MEMORY = re.compile(r"(?P<num>\d+)(?:\s*(?P<unit>\S+))?")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_GPU_LABEL = re.compile(r"GPU(\d+)")
# Known kinds are X, SYS, NODE, PHB, PXB, PIX, NV<n>; newer drivers add kinds, so accept any such word.
_LINK = re.compile(r"[A-Z][A-Z0-9]*")


class _Frozen(BaseModel):
    # extra="forbid": the renderer reads these files back, and a typo there must not pass silently.
    model_config = ConfigDict(frozen=True, extra="forbid")


class GpuFacts(_Frozen):
    index: int = Field(ge=0)
    name: str
    uuid: str | None = None
    pci_bus_id: str | None = None
    memory_total_bytes: int = Field(gt=0)
    memory_reserved_bytes: int | None = Field(default=None, ge=0)
    # What CUDA calls "total" (torch.cuda.mem_get_info, vLLM): total minus what the driver reserves.
    memory_usable_bytes: int = Field(gt=0)
    memory_used_bytes: int | None = Field(default=None, ge=0)
    memory_free_bytes: int | None = Field(default=None, ge=0)
    compute_capability: str | None = None
    mig_mode: str | None = None
    links: dict[int, str] = Field(default_factory=dict)  # peer GPU index -> "NV18", "SYS", ...; no self
    cpu_affinity: str | None = None
    numa_affinity: str | None = None


class Probe(_Frozen):
    status: Literal["ok", "absent", "failed"] = "ok"
    detail: str = ""


class HostFacts(_Frozen):
    schema_version: int = 1
    driver_version: str | None = None
    cuda_version: str | None = None
    gpus: list[GpuFacts] = Field(default_factory=list)
    probe: Probe = Field(default_factory=Probe)

    @property
    def gpu_count(self) -> int:
        return len(self.gpus)

    @property
    def all_pairs_nvlink(self) -> bool:
        """Every pair of GPUs talks over NVLink. False below two GPUs: there is no pair to rely on,
        and False without a topology matrix: unknown must not pass for fast."""
        pairs = [(g, peer) for g in self.gpus for peer in self.gpus if peer is not g]
        return len(self.gpus) >= 2 and all(g.links.get(p.index, "").startswith("NV") for g, p in pairs)


@dataclasses.dataclass(frozen=True)
class GpuRecord:
    """One GPU as one source saw it; None is unknown. Fields are named as in GpuFacts."""

    index: int
    name: str
    memory_total_bytes: int
    uuid: str | None = None
    pci_bus_id: str | None = None
    memory_reserved_bytes: int | None = None
    memory_used_bytes: int | None = None
    memory_free_bytes: int | None = None
    compute_capability: str | None = None
    mig_mode: str | None = None


@dataclasses.dataclass(frozen=True)
class SmiRecords:
    source: str
    gpus: list[GpuRecord]
    driver_version: str | None = None
    cuda_version: str | None = None


@dataclasses.dataclass(frozen=True)
class TopoRow:
    links: dict[int, str]
    cpu_affinity: str | None
    numa_affinity: str | None


def _known(value: str | None) -> str | None:
    v = (value or "").strip()
    # The CSV brackets every non-value ("[N/A]", "[Not Supported]", "[Unknown Error]"); the XML says N/A.
    if not v or v == "N/A" or (v.startswith("[") and v.endswith("]")):
        return None
    return v


def _require_text(text: str, source: str, expected: str) -> None:
    if not text.strip():
        what = "empty" if not text else "only whitespace"
        raise InputError(source, "line 1", f"file is {what}; expected {expected}")


def _mib_bytes(raw: str | None, source: str, field: str) -> int | None:
    value = _known(raw)
    if value is None:
        return None
    m = _MEMORY.fullmatch(value)
    if not m:
        raise InputError(source, field, f"not a whole number of MiB: {value!r}")
    if m["unit"] not in (None, "MiB"):
        raise InputError(source, field, f"unit {m['unit']!r} in {value!r}; nvidia-smi reports memory in MiB")
    return int(m["num"]) * MIB


def parse_query_csv(text: str, source: str = "nvidia-smi --query-gpu") -> SmiRecords:
    """`nvidia-smi --query-gpu=... --format=csv[,nounits]`; columns found by header, any order or subset."""
    _require_text(text, source, "the output of nvidia-smi --query-gpu=... --format=csv")
    reader = csv.reader(io.StringIO(text), skipinitialspace=True)
    rows = [(reader.line_num, [c.strip() for c in row]) for row in reader if any(c.strip() for c in row)]
    head_line, head = rows[0] if rows else (1, [])
    columns: dict[str, tuple[int, str]] = {}  # field -> (position, header cell)
    for pos, cell in enumerate(head):
        m = _HEADER_CELL.fullmatch(cell)
        name = _ALIASES.get(m["name"], m["name"]) if m else cell
        if name in QUERY_FIELDS and name not in columns:
            columns[name] = (pos, cell)
            if name.startswith("memory.") and m and m["unit"] not in (None, "MiB"):
                raise InputError(source, cell, "a unit other than MiB, which nvidia-smi reports memory in")
    if not columns:
        why = f"a header row is needed, got {', '.join(head)[:50]!r}; capture with --format=csv, not noheader"
        raise InputError(source, f"line {head_line}", why)
    for required in _REQUIRED_COLUMNS:
        if required not in columns:
            raise InputError(source, required, "column missing from the header row; add it to --query-gpu")
    if len(rows) == 1:
        raise InputError(source, f"line {head_line}", "a header row but no GPU rows")

    gpus: dict[int, tuple[int, GpuRecord]] = {}
    driver: str | None = None
    for lineno, row in rows[1:]:
        if len(row) != len(head):
            why = f"{len(row)} fields where the header has {len(head)}; is the file cut short?"
            raise InputError(source, f"line {lineno}", why)
        cell = {name: row[pos] for name, (pos, _) in columns.items()}
        at = {name: f"line {lineno}, {header}" for name, (_, header) in columns.items()}
        raw_index = _known(cell["index"])
        if raw_index is None or not raw_index.isdigit():
            raise InputError(source, at["index"], f"GPU index {cell['index']!r} is not a number")
        name = _known(cell["name"])
        total = _mib_bytes(cell["memory.total"], source, at["memory.total"])
        if name is None or total is None:
            missing = "name" if name is None else "memory.total"
            raise InputError(source, at[missing], f"{missing} is unknown ({cell[missing]!r})")
        index = int(raw_index)
        if index in gpus:
            raise InputError(source, at["index"], f"GPU index {index} again; first on line {gpus[index][0]}")
        mem = {
            f"memory_{f}_bytes": _mib_bytes(cell.get(f"memory.{f}"), source, at.get(f"memory.{f}", f))
            for f in _MEMORY_PARTS
        }
        text = {attr: _known(cell.get(column)) for attr, column in _CSV_TEXT.items()}
        gpus[index] = (lineno, GpuRecord(index, name, total, **text, **mem))
        driver = driver or _known(cell.get("driver_version"))
    return SmiRecords(source, [record for _, record in gpus.values()], driver_version=driver)


def parse_smi_xml(text: str, source: str = "nvidia-smi -q -x") -> SmiRecords:
    """`nvidia-smi -q -x`. It lists GPUs in index order and carries no compute capability."""
    _require_text(text, source, "the output of nvidia-smi -q -x")
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as err:
        line, _ = err.position
        reason = str(err).split(":")[0]
        raise InputError(
            source, f"line {line}", f"not well-formed XML ({reason}); is it cut short?"
        ) from None
    if root.tag != "nvidia_smi_log":
        raise InputError(source, f"<{root.tag}>", "expected <nvidia_smi_log>, the output of nvidia-smi -q -x")

    def value(element: ElementTree.Element, path: str) -> str | None:
        node = element.find(path)
        return None if node is None else _known(node.text)

    gpus = []
    for i, gpu in enumerate(root.findall("gpu")):
        name = value(gpu, "product_name")
        if name is None:
            raise InputError(source, f"gpu[{i}].product_name", "missing or unknown")
        mem = {
            f: _mib_bytes(value(gpu, f"fb_memory_usage/{f}"), source, f"gpu[{i}].fb_memory_usage.{f}")
            for f in ("total", *_MEMORY_PARTS)
        }
        total = mem.pop("total")
        if total is None:
            raise InputError(source, f"gpu[{i}].fb_memory_usage.total", "missing or unknown")
        text = {attr: value(gpu, path) for attr, path in _XML_TEXT.items()}
        gpus.append(GpuRecord(i, name, total, **text, **{f"memory_{f}_bytes": b for f, b in mem.items()}))
    if not gpus:
        raise InputError(source, "gpu", "no <gpu> element: nvidia-smi saw no GPU here")
    return SmiRecords(source, gpus, value(root, "driver_version"), value(root, "cuda_version"))


def _split_topo(line: str, tabbed: bool) -> list[str]:
    # nvidia-smi separates with tabs; a matrix pasted from a terminal has runs of spaces instead.
    return [c.strip() for c in (line.split("\t") if tabbed else re.split(r"\s{2,}", line))]


def parse_topo(text: str, source: str = "nvidia-smi topo -m") -> dict[int, TopoRow]:
    """`nvidia-smi topo -m`: per GPU index, its link to every other GPU and its CPU/NUMA affinity."""
    _require_text(text, source, "the output of nvidia-smi topo -m")
    lines = [_ANSI.sub("", line) for line in text.splitlines()]
    head_no = next((i for i, line in enumerate(lines) if line.strip()), 0)
    tabbed = "\t" in lines[head_no]
    cols = _split_topo(lines[head_no], tabbed)
    cols = cols[1:] if cols[0] == "" else cols  # the corner cell above the row labels
    gpu_cols = {pos: int(m[1]) for pos, c in enumerate(cols) if (m := _GPU_LABEL.fullmatch(c))}
    if not gpu_cols:
        why = "the header names no GPU<n> columns; expected nvidia-smi topo -m output"
        raise InputError(source, f"line {head_no + 1}", why)
    cpu_pos, numa_pos = (cols.index(c) if c in cols else None for c in ("CPU Affinity", "NUMA Affinity"))
    needed = max(p for p in (*gpu_cols, cpu_pos, numa_pos) if p is not None) + 1

    rows: dict[int, TopoRow] = {}
    for no in range(head_no + 1, len(lines)):
        if not lines[no].strip() or lines[no].startswith("Legend"):
            break  # the matrix ends at a blank line; the legends follow
        label, *values = _split_topo(lines[no], tabbed)
        m = _GPU_LABEL.fullmatch(label)
        if not m:
            continue  # NIC rows: links to NICs are not GPU facts
        me = int(m[1])
        # Values map to header columns by position; fields past them (GPU rows carry an extra empty one
        # before "GPU NUMA ID") are not read.
        if len(values) < needed:
            raise InputError(
                source, f"line {no + 1}", f"{len(values)} values where the header needs {needed}"
            )
        links = {}
        for pos, peer in gpu_cols.items():
            link = values[pos]
            if (peer == me) != (link == "X") or not _LINK.fullmatch(link):
                raise InputError(source, f"line {no + 1}, {cols[pos]}", f"{link!r} is not a link type here")
            if peer != me:
                links[peer] = link
        if me in rows:
            raise InputError(source, f"line {no + 1}", f"a second row for {label}")
        cpu, numa = (None if p is None else _known(values[p]) for p in (cpu_pos, numa_pos))
        rows[me] = TopoRow(links, cpu, numa)
    if set(rows) != set(gpu_cols.values()):
        why = f"rows for GPUs {sorted(rows)} but columns for {sorted(gpu_cols.values())}"
        raise InputError(source, "GPU rows", why)
    return rows


def _merge(first: SmiRecords, second: SmiRecords) -> list[GpuRecord]:
    """Values from `first` win; `second` fills what `first` does not know."""
    if len(first.gpus) != len(second.gpus):
        why = f"lists {len(second.gpus)} GPU(s) but {first.source} lists {len(first.gpus)}"
        raise InputError(second.source, "gpu", f"{why}; capture both on the same host")
    by = "uuid" if all(g.uuid for g in (*first.gpus, *second.gpus)) else "index"
    theirs = {getattr(g, by): g for g in second.gpus}
    ours = {getattr(g, by) for g in first.gpus}
    if ours != set(theirs):
        why = f"GPUs {sorted(ours ^ set(theirs))} are in only one of this and {first.source}"
        raise InputError(second.source, by, f"{why}; capture both on the same host")
    merged = []
    for g in first.gpus:
        other = theirs[getattr(g, by)]
        gaps = {f.name: getattr(other, f.name) for f in dataclasses.fields(g) if getattr(g, f.name) is None}
        merged.append(dataclasses.replace(g, **gaps))
    return merged


def _usable(g: GpuRecord, source: str) -> int:
    # free = total - reserved - used, but each is rounded to MiB, so the two ways can differ by one MiB
    # (H200: 143771 - 616 = 143155, 0 + 143156; CUDA said 143155.94). total - reserved errs low: prefer it.
    if g.memory_reserved_bytes is not None:
        usable = g.memory_total_bytes - g.memory_reserved_bytes
    elif g.memory_used_bytes is not None and g.memory_free_bytes is not None:
        usable = g.memory_used_bytes + g.memory_free_bytes
    else:
        why = "unknown, and so is memory.used or memory.free; query memory.reserved"
        raise InputError(source, f"gpu[{g.index}].memory.reserved", why)
    if not 0 < usable <= g.memory_total_bytes:
        why = f"usable {usable // MIB} MiB outside total {g.memory_total_bytes // MIB} MiB"
        raise InputError(source, f"gpu[{g.index}].memory", why)
    return usable


def collect(
    query_csv: str | None = None,
    xml: str | None = None,
    topo: str | None = None,
    *,
    query_source: str = "nvidia-smi --query-gpu",
    xml_source: str = "nvidia-smi -q -x",
    topo_source: str = "nvidia-smi topo -m",
) -> HostFacts:
    """Facts from the texts given. The CSV wins where both know a value; the XML fills the gaps."""
    from_csv = parse_query_csv(query_csv, query_source) if query_csv is not None else None
    from_xml = parse_smi_xml(xml, xml_source) if xml is not None else None
    primary = from_csv or from_xml
    if primary is None:
        raise InputError("nvidia-smi", None, "need the --query-gpu CSV or the -q -x XML, or both")
    gpus = _merge(from_csv, from_xml) if from_csv and from_xml else primary.gpus
    rows = parse_topo(topo, topo_source) if topo is not None else {}
    if topo is not None and set(rows) != {g.index for g in gpus}:
        why = f"rows for GPUs {sorted(rows)} but {primary.source} lists {sorted(g.index for g in gpus)}"
        raise InputError(topo_source, "GPU rows", f"{why}; capture both on the same host")
    facts = [
        GpuFacts(
            **dataclasses.asdict(g),
            memory_usable_bytes=_usable(g, primary.source),
            **dataclasses.asdict(rows.get(g.index, TopoRow({}, None, None))),
        )
        for g in sorted(gpus, key=lambda g: g.index)
    ]
    return HostFacts(
        driver_version=(from_csv and from_csv.driver_version) or (from_xml and from_xml.driver_version),
        cuda_version=from_xml.cuda_version if from_xml else None,
        gpus=facts,
    )


def _read(path: str | Path | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, None, "no such file") from None
    except UnicodeDecodeError:
        raise InputError(path, None, "not UTF-8 text; expected nvidia-smi output") from None
    except OSError as err:
        raise InputError(path, None, f"cannot read: {err.strerror or err}") from None


def read_host_facts(
    query_path: str | Path | None = None,
    xml_path: str | Path | None = None,
    topo_path: str | Path | None = None,
) -> HostFacts:
    """Facts from captured files; errors name the file."""
    texts = [_read(path) for path in (query_path, xml_path, topo_path)]
    sources = {"query_source": str(query_path), "xml_source": str(xml_path), "topo_source": str(topo_path)}
    return collect(*texts, **sources)


Runner = Callable[..., "subprocess.CompletedProcess[str]"]
# Source name (as in InputErrors and probe details) -> command, in collect's argument order.
PROBE_COMMANDS: dict[str, tuple[str, ...]] = {
    "nvidia-smi --query-gpu": ("nvidia-smi", f"--query-gpu={','.join(QUERY_FIELDS)}", "--format=csv"),
    "nvidia-smi -q -x": ("nvidia-smi", "-q", "-x"),
    "nvidia-smi topo -m": ("nvidia-smi", "topo", "-m"),
}


def probe_local(runner: Runner = subprocess.run, timeout: float = 30) -> HostFacts:
    """Run nvidia-smi here. No nvidia-smi, or one that fails (exit 9: no driver, as in most containers),
    gives facts with no GPUs and a probe status saying why: that is a fact about the host, not an error.
    Output that does not parse raises InputError: that is a driver this code does not understand."""
    outputs = []
    for shown, cmd in PROBE_COMMANDS.items():
        try:
            done = runner(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
        except FileNotFoundError:
            return HostFacts(probe=Probe(status="absent", detail="nvidia-smi not found on PATH"))
        except subprocess.TimeoutExpired:
            return HostFacts(probe=Probe(status="failed", detail=f"{shown}: no answer within {timeout:g} s"))
        except OSError as err:
            return HostFacts(probe=Probe(status="failed", detail=f"{shown}: cannot run: {err}"))
        if done.returncode != 0:
            # Some failures ("couldn't communicate with the NVIDIA driver") are printed on stdout.
            said = [line.strip() for out in (done.stderr, done.stdout) for line in (out or "").splitlines()]
            first = next((line for line in said if line), "no output")
            return HostFacts(probe=Probe(status="failed", detail=f"{shown}: exit {done.returncode}: {first}"))
        outputs.append(done.stdout)
    return collect(*outputs)


def _links_summary(links: dict[int, str]) -> str:
    counts = Counter(links.values())
    return ", ".join(f"{kind} x{n}" for kind, n in sorted(counts.items()))


def facts_table(facts: HostFacts) -> Table:
    """One row per GPU, for humans; the JSON is the record."""
    title = f"GPUs: driver {facts.driver_version or '?'}, CUDA {facts.cuda_version or '?'}"
    if facts.probe.status != "ok":
        title += f" (probe {facts.probe.status}: {facts.probe.detail})"
    table = Table(title=escape(title))
    for header in ("GPU", "Name", "Total GiB", "Reserved MiB", "Usable GiB", "CC", "MIG", "Links", "NUMA"):
        table.add_column(header, justify="left" if header in ("Name", "Links") else "right")
    for g in facts.gpus:
        reserved = None if g.memory_reserved_bytes is None else str(g.memory_reserved_bytes // MIB)
        sizes = (f"{g.memory_total_bytes / GIB:.2f}", reserved, f"{g.memory_usable_bytes / GIB:.2f}")
        rest = (g.compute_capability, g.mig_mode, _links_summary(g.links), g.numa_affinity)
        table.add_row(str(g.index), escape(g.name), *(v or "-" for v in (*sizes, *rest)))
    return table
