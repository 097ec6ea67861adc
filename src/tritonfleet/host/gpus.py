"""A host's GPUs, read from what nvidia-smi prints.

Three pure parsers turn text into records: the `--query-gpu ... --format=csv` table, the `-q -x` XML and
the `topo -m` matrix. `collect` merges them into HostFacts, the typed facts that are written as JSON for
Ansible and read back by the renderer. Reading files and running nvidia-smi stay at the edges
(`read_host_facts`, `probe_local`), so every parser is tested on real captured output.

Whatever text comes in, the answer is facts or one InputError. The facts' validators hold what `collect`
guarantees (usable within total, links to other GPUs of the host, ...), so `load_facts` refuses a file
that `tritonfleet facts` could never have written, naming the field.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import subprocess
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

# Not defusedxml: the XML is a local file the operator captured, or nvidia-smi's own stdout.
from xml.etree import ElementTree

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import ErrorDetails, PydanticCustomError
from rich.markup import escape
from rich.table import Table

from tritonfleet.errors import InputError
from tritonfleet.files import read_text
from tritonfleet.limits import MAX_GPU_BYTES
from tritonfleet.units import GiB, MiB

# Far above any host: a value past these is a garbled capture or a hand-edited file (limits.py for memory).
MAX_GPU_INDEX = 1023
SCHEMA_VERSION = 1
# What probe_local asks for, and every column the CSV parser reads; others are ignored.
QUERY_FIELDS = (
    *("index", "uuid", "name", "pci.bus_id", "memory.total", "memory.reserved", "memory.used"),
    *("memory.free", "driver_version", "compute_cap", "mig.mode.current"),
)
_REQUIRED_COLUMNS = ("index", "name", "memory.total")
_MEMORY_PARTS = ("reserved", "used", "free")
# --query-gpu accepts these spellings too.
_ALIASES = {"gpu_name": "name", "gpu_uuid": "uuid", "gpu_bus_id": "pci.bus_id"}
_HEADER_CELL = re.compile(r"(?P<name>[^\[\]]+?)\s*(?:\[(?P<unit>[^\]]*)\])?")
# ASCII digits only: int() takes any Unicode digit, nvidia-smi prints none of them.
_DIGITS = re.compile(r"[0-9]+")
_MEMORY = re.compile(r"(?P<num>[0-9]+)(?:\s*(?P<unit>\S+))?")
_CAPABILITY = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}")  # compute_cap: "9.0", "12.0"
_MIG_MODES = ("Enabled", "Disabled")  # mig.mode.current and <current_mig>, as nvidia-smi prints them
_LINK_KEY = re.compile(r"0|[1-9][0-9]{0,3}")  # a links key as model_dump_json writes it
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\[\]-]{1,40}")  # shown as it is in an error's field
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_GPU_LABEL = re.compile(r"GPU([0-9]+)")
# Known kinds are X, SYS, NODE, PHB, PXB, PIX, NV<n>; newer drivers add kinds, so accept any such word.
_LINK = re.compile(r"[A-Z][A-Z0-9]*")


def _invalid(why: str, *at: str | int) -> PydanticCustomError:
    """A validation error in words; `at` extends its location below the field (_error_field reads it)."""
    return PydanticCustomError("host_facts", "{why}", {"why": why, "at": at})


def _size(n: int) -> str:
    return f"{n} bytes ({n // MiB} MiB)" if n % MiB == 0 else f"{n} bytes"


class _Frozen(BaseModel):
    # extra="forbid": the renderer reads these files back, and a typo there must not pass silently.
    model_config = ConfigDict(frozen=True, extra="forbid")


class GpuFacts(_Frozen):
    """One GPU. The validators hold what `collect` guarantees, so that a facts file it could never have
    written (usable above total, a link to itself, ...) is refused when read back, naming the field."""

    index: int = Field(ge=0, le=MAX_GPU_INDEX)
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
    mig_mode: str | None = None  # "Enabled" or "Disabled"; None where the GPU has no MIG
    links: dict[int, str] = Field(default_factory=dict)  # peer GPU index -> "NV18", "SYS", ...; no self
    cpu_affinity: str | None = None
    numa_affinity: str | None = None

    @field_validator("name")
    @classmethod
    def _named(cls, name: str) -> str:
        if not name.strip():
            raise _invalid("the GPU name is empty")
        return name

    @field_validator(
        "memory_total_bytes",
        "memory_reserved_bytes",
        "memory_usable_bytes",
        "memory_used_bytes",
        "memory_free_bytes",
    )
    @classmethod
    def _within_total(cls, n: int | None, info: ValidationInfo) -> int | None:
        if n is None:
            return n
        if n > MAX_GPU_BYTES:
            raise _invalid(f"{n} bytes is more than 16 TiB; no GPU has that much memory")
        total = info.data.get("memory_total_bytes")
        if info.field_name == "memory_total_bytes" or total is None:
            return n  # total itself, or total already refused
        what = info.field_name.removeprefix("memory_").removesuffix("_bytes")
        if n > total:
            raise _invalid(f"{what} {_size(n)} is more than memory_total_bytes {_size(total)}")
        reserved = info.data.get("memory_reserved_bytes")
        if info.field_name == "memory_usable_bytes" and reserved is not None and reserved + n > total:
            why = f"reserved {_size(reserved)} + usable {_size(n)} is more than total {_size(total)}"
            raise _invalid(f"{why}; usable is total - reserved")
        return n

    @field_validator("compute_capability")
    @classmethod
    def _capability(cls, cc: str | None) -> str | None:
        if cc is not None and not _CAPABILITY.fullmatch(cc):
            raise _invalid(f"{cc!r} is not a compute capability such as '9.0' (major.minor)")
        return cc

    @field_validator("mig_mode")
    @classmethod
    def _mig(cls, mode: str | None) -> str | None:
        if mode is not None and mode not in _MIG_MODES:
            raise _invalid(f"{mode!r} is not a MIG mode: 'Enabled', 'Disabled' or null (no MIG)")
        return mode

    @field_validator("links", mode="before")
    @classmethod
    def _link_keys(cls, links: object) -> object:
        # JSON keys are text. Only the digits model_dump_json writes are GPU indices: int() would also
        # take "01", " 1" or "1_0". Converted here, since what a before-validator returns is checked as
        # Python input, where strict mode takes no text for an int.
        if not isinstance(links, dict):
            return links
        for key in links:
            if isinstance(key, str) and not _LINK_KEY.fullmatch(key):
                raise _invalid(f"key {key[:20]!r} is not a GPU index", key)
        return {int(k) if isinstance(k, str) else k: v for k, v in links.items()}

    @field_validator("links")
    @classmethod
    def _links(cls, links: dict[int, str], info: ValidationInfo) -> dict[int, str]:
        me = info.data.get("index")
        for peer, link in links.items():
            if peer == me:
                raise _invalid(f"a link from GPU {me} to itself; links name the other GPUs", peer)
            if link == "X" or not _LINK.fullmatch(link):
                why = f"{link[:20]!r} is not a link type from nvidia-smi topo -m (NV18, SYS, PIX, ...)"
                raise _invalid(why, peer)
        return links


class Probe(_Frozen):
    status: Literal["ok", "absent", "failed"] = "ok"
    detail: str = ""


class HostFacts(_Frozen):
    schema_version: int = SCHEMA_VERSION
    driver_version: str | None = None
    cuda_version: str | None = None
    gpus: list[GpuFacts] = Field(default_factory=list)
    probe: Probe = Field(default_factory=Probe)

    @field_validator("schema_version")
    @classmethod
    def _schema(cls, version: int) -> int:
        if version != SCHEMA_VERSION:
            raise _invalid(f"version {version} is not {SCHEMA_VERSION}, the one this tritonfleet reads")
        return version

    @field_validator("gpus")
    @classmethod
    def _one_host(cls, gpus: list[GpuFacts]) -> list[GpuFacts]:
        first: dict[tuple[str, object], int] = {}  # (field, value) -> position of the first GPU with it
        for pos, g in enumerate(gpus):
            for field, value in (("index", g.index), ("uuid", g.uuid)):
                if value is not None and (seen := first.setdefault((field, value), pos)) != pos:
                    raise _invalid(f"GPU {field} {value} again; gpus.{seen} has it too", pos, field)
        indices = sorted(g.index for g in gpus)
        for pos, g in enumerate(gpus):
            for peer in g.links:
                if peer not in indices:
                    why = f"GPU {peer} is not a GPU of this host (its GPUs: {', '.join(map(str, indices))})"
                    raise _invalid(why, pos, "links", peer)
        return gpus

    @field_validator("probe")
    @classmethod
    def _probe_found_them(cls, probe: Probe, info: ValidationInfo) -> Probe:
        count = len(info.data.get("gpus") or ())
        if probe.status != "ok" and count:
            why = f"probe {probe.status}, yet {count} GPU(s) listed; a probe that fails records no GPU"
            raise _invalid(why, "status")
        return probe

    @property
    def gpu_count(self) -> int:
        return len(self.gpus)

    @property
    def all_pairs_nvlink(self) -> bool:
        """Every pair of GPUs talks over NVLink. False below two GPUs: there is no pair to rely on,
        and False without a topology matrix: unknown must not pass for fast."""
        pairs = [(g, peer) for g in self.gpus for peer in self.gpus if peer is not g]
        return len(self.gpus) >= 2 and all(g.links.get(p.index, "").startswith("NV") for g, p in pairs)


def _error_field(error: ErrorDetails, prefix: str = "") -> str | None:
    """Where a validation error is, dotted as the JSON nests it: gpus.0.memory_usable_bytes. A key the
    file made up (an unknown one, say) is quoted, so that a newline in it cannot break the one line."""
    parts = [str(p) for p in (*error["loc"], *(error.get("ctx") or {}).get("at", ()))]
    shown = [p if _PLAIN_KEY.fullmatch(p) else json.dumps(p[:40]) for p in parts]
    return prefix + ".".join(shown) if shown else (prefix.rstrip(".") or None)


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


def _prepare(text: str, source: str, expected: str) -> str:
    """The text a parser reads: no byte-order mark (a file saved by an editor), not blank, and text that
    can be written out again (a lone surrogate cannot)."""
    text = text.removeprefix("\ufeff")
    if not text.strip():
        what = "empty" if not text else "only whitespace"
        raise InputError(source, "line 1", f"file is {what}; expected {expected}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        line = text.count("\n", 0, err.start) + 1
        raise InputError(source, f"line {line}", "not text: a lone UTF-16 surrogate") from None
    return text


def _whole(digits: str) -> int | None:
    """ASCII digits as a number; None when it is too long to mean anything here (int() would refuse
    past 4300 digits anyway)."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 20 else None


def _gpu_index(raw: str, source: str, field: str) -> int:
    index = _whole(raw)
    if index is None or index > MAX_GPU_INDEX:
        raise InputError(source, field, f"GPU index {raw[:30]!r} is above {MAX_GPU_INDEX}; not a GPU here")
    return index


def _mib_bytes(raw: str | None, source: str, field: str) -> int | None:
    value = _known(raw)
    if value is None:
        return None
    m = _MEMORY.fullmatch(value)
    if not m:
        raise InputError(source, field, f"not a whole number of MiB: {value[:50]!r}")
    if m["unit"] not in (None, "MiB"):
        why = f"unit {m['unit'][:20]!r} in {value[:50]!r}; nvidia-smi reports memory in MiB"
        raise InputError(source, field, why)
    mib = _whole(m["num"])
    if mib is None or mib * MiB > MAX_GPU_BYTES:
        raise InputError(source, field, f"{value[:50]!r} is more than 16 TiB; no GPU has that much memory")
    return mib * MiB


def _total_bytes(raw: str | None, source: str, field: str) -> int | None:
    total = _mib_bytes(raw, source, field)
    if total == 0:
        raise InputError(source, field, "memory.total is 0 MiB; a GPU has memory")
    return total


def _mig_mode(raw: str | None, source: str, field: str) -> str | None:
    """MIG mode as nvidia-smi prints it, Enabled or Disabled (read in any case); None for N/A: no MIG."""
    value = _known(raw)
    if value is None:
        return None
    mode = next((m for m in _MIG_MODES if m.lower() == value.lower()), None)
    if mode is None:
        why = f"MIG mode {value[:30]!r} is neither Enabled nor Disabled; the planner must know which"
        raise InputError(source, field, why)
    return mode


def _compute_capability(raw: str | None, source: str, field: str) -> str | None:
    value = _known(raw)
    if value is not None and not _CAPABILITY.fullmatch(value):
        raise InputError(source, field, f"{value[:30]!r} is not a compute capability such as 9.0")
    return value


def _check_unique(
    seen: dict[object, str], value: object, what: str, here: str, source: str, field: str
) -> None:
    """Records where `value` was first seen; a second GPU with it is two captures mixed up."""
    if value is None:
        return
    if value in seen:
        raise InputError(source, field, f"{what} {value} again; first on {seen[value]}")
    seen[value] = here


def parse_query_csv(text: str, source: str = "nvidia-smi --query-gpu") -> SmiRecords:
    """`nvidia-smi --query-gpu=... --format=csv[,nounits]`; columns found by header, any order or subset."""
    text = _prepare(text, source, "the output of nvidia-smi --query-gpu=... --format=csv")
    # newline="": lines end at \n, \r\n or a lone \r, as the csv module wants them.
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    try:
        rows = [(reader.line_num, [c.strip() for c in row]) for row in reader if any(c.strip() for c in row)]
    except csv.Error as err:  # a field past the csv module's size limit
        raise InputError(source, f"line {reader.line_num}", f"not nvidia-smi CSV: {err}") from None
    head_line, head = rows[0] if rows else (1, [])
    columns: dict[str, tuple[int, str]] = {}  # field -> (position, header cell)
    head = [" ".join(cell.split()) for cell in head]  # a quoted cell may hold a newline; fields are one line
    for pos, cell in enumerate(head):
        m = _HEADER_CELL.fullmatch(cell)
        name = _ALIASES.get(m["name"], m["name"]) if m else cell
        unit = m["unit"].strip() if m and m["unit"] is not None else None
        if name in QUERY_FIELDS and name not in columns:
            columns[name] = (pos, cell)
            if name.startswith("memory.") and unit not in (None, "MiB"):
                raise InputError(source, cell, "a unit other than MiB, which nvidia-smi reports memory in")
    if not columns:
        why = f"a header row is needed, got {', '.join(head)[:50]!r}; capture with --format=csv, not noheader"
        raise InputError(source, f"line {head_line}", why)
    for required in _REQUIRED_COLUMNS:
        if required not in columns:
            raise InputError(source, required, "column missing from the header row; add it to --query-gpu")
    if len(rows) == 1:
        raise InputError(source, f"line {head_line}", "a header row but no GPU rows")

    gpus: list[GpuRecord] = []
    first_line: dict[str, dict[object, str]] = {"index": {}, "uuid": {}}
    driver: str | None = None
    for lineno, row in rows[1:]:
        if len(row) != len(head):
            why = f"{len(row)} fields where the header has {len(head)}; is the file cut short?"
            raise InputError(source, f"line {lineno}", why)
        cell = {name: row[pos] for name, (pos, _) in columns.items()}
        at = {name: f"line {lineno}, {header}" for name, (_, header) in columns.items()}
        raw_index = _known(cell["index"])
        if raw_index is None or not _DIGITS.fullmatch(raw_index):
            raise InputError(source, at["index"], f"GPU index {cell['index'][:30]!r} is not a number")
        index = _gpu_index(raw_index, source, at["index"])
        name = _known(cell["name"])
        total = _total_bytes(cell["memory.total"], source, at["memory.total"])
        if name is None or total is None:
            missing = "name" if name is None else "memory.total"
            raise InputError(source, at[missing], f"{missing} is unknown ({cell[missing][:30]!r})")
        _check_unique(first_line["index"], index, "GPU index", f"line {lineno}", source, at["index"])
        mem = {
            f"memory_{f}_bytes": _mib_bytes(cell.get(f"memory.{f}"), source, at.get(f"memory.{f}", f))
            for f in _MEMORY_PARTS
        }
        uuid, pci = (_known(cell.get(column)) for column in ("uuid", "pci.bus_id"))
        _check_unique(first_line["uuid"], uuid, "GPU UUID", f"line {lineno}", source, at.get("uuid", "uuid"))
        cc = _compute_capability(cell.get("compute_cap"), source, at.get("compute_cap", "compute_cap"))
        mig = _mig_mode(cell.get("mig.mode.current"), source, at.get("mig.mode.current", "mig.mode.current"))
        gpus.append(GpuRecord(index, name, total, uuid, pci, **mem, compute_capability=cc, mig_mode=mig))
        driver = driver or _known(cell.get("driver_version"))
    return SmiRecords(source, gpus, driver_version=driver)


def parse_smi_xml(text: str, source: str = "nvidia-smi -q -x") -> SmiRecords:
    """`nvidia-smi -q -x`. It lists GPUs in index order and carries no compute capability."""
    text = _prepare(text, source, "the output of nvidia-smi -q -x")
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as err:
        line, _ = err.position
        reason = str(err).split(":")[0]
        raise InputError(
            source, f"line {line}", f"not well-formed XML ({reason}); is it cut short?"
        ) from None
    if root.tag != "nvidia_smi_log":
        tag = str(root.tag)[:40]
        raise InputError(source, f"<{tag}>", "expected <nvidia_smi_log>, the output of nvidia-smi -q -x")

    def value(element: ElementTree.Element, path: str) -> str | None:
        node = element.find(path)
        return None if node is None else _known(node.text)

    gpus = []
    uuids: dict[object, str] = {}
    for i, gpu in enumerate(root.findall("gpu")):
        name = value(gpu, "product_name")
        if name is None:
            raise InputError(source, f"gpu[{i}].product_name", "missing or unknown")
        if i > MAX_GPU_INDEX:
            raise InputError(source, f"gpu[{i}]", f"more than {MAX_GPU_INDEX + 1} GPUs; not one host's")
        total = _total_bytes(value(gpu, "fb_memory_usage/total"), source, f"gpu[{i}].fb_memory_usage.total")
        if total is None:
            raise InputError(source, f"gpu[{i}].fb_memory_usage.total", "missing or unknown")
        mem = {
            f: _mib_bytes(value(gpu, f"fb_memory_usage/{f}"), source, f"gpu[{i}].fb_memory_usage.{f}")
            for f in _MEMORY_PARTS
        }
        uuid = value(gpu, "uuid")
        _check_unique(uuids, uuid, "GPU UUID", f"gpu[{i}]", source, f"gpu[{i}].uuid")
        mig = _mig_mode(value(gpu, "mig_mode/current_mig"), source, f"gpu[{i}].mig_mode.current_mig")
        pci = value(gpu, "pci/pci_bus_id")
        gpus.append(
            GpuRecord(
                i, name, total, uuid, pci, **{f"memory_{f}_bytes": b for f, b in mem.items()}, mig_mode=mig
            )
        )
    if not gpus:
        raise InputError(source, "gpu", "no <gpu> element: nvidia-smi saw no GPU here")
    return SmiRecords(source, gpus, value(root, "driver_version"), value(root, "cuda_version"))


def _split_topo(line: str, tabbed: bool) -> list[str]:
    # nvidia-smi separates with tabs; a matrix pasted from a terminal has runs of spaces instead.
    return [c.strip() for c in (line.split("\t") if tabbed else re.split(r"\s{2,}", line))]


def parse_topo(text: str, source: str = "nvidia-smi topo -m") -> dict[int, TopoRow]:
    """`nvidia-smi topo -m`: per GPU index, its link to every other GPU and its CPU/NUMA affinity."""
    text = _prepare(text, source, "the output of nvidia-smi topo -m")
    lines = [_ANSI.sub("", line) for line in text.splitlines()]
    head_no = next((i for i, line in enumerate(lines) if line.strip()), 0)
    tabbed = "\t" in lines[head_no]
    cols = _split_topo(lines[head_no], tabbed)
    cols = cols[1:] if cols[0] == "" else cols  # the corner cell above the row labels
    gpu_cols: dict[int, int] = {}  # position -> GPU index
    for pos, c in enumerate(cols):
        if m := _GPU_LABEL.fullmatch(c):
            index = _gpu_index(m[1], source, f"line {head_no + 1}, {c[:30]}")
            if index in gpu_cols.values():
                raise InputError(source, f"line {head_no + 1}, {c}", "a second column for this GPU")
            gpu_cols[pos] = index
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
        me = _whole(m[1])
        if me not in gpu_cols.values():
            why = f"a row for {label[:30]}, which has no column; columns for {sorted(gpu_cols.values())}"
            raise InputError(source, f"line {no + 1}", why)
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
                why = f"{link[:30]!r} is not a link type here"
                raise InputError(source, f"line {no + 1}, {cols[pos]}", why)
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


def _match_by(first: SmiRecords, second: SmiRecords) -> str:
    """What pairs a GPU of one capture with the same GPU of the other. Not the index where anything
    better is known: the XML has no index, only an order, and a capture of some GPUs (nvidia-smi -i 2,5)
    lists GPU 2 first."""
    for key in ("uuid", "pci_bus_id"):
        values = [[getattr(g, key) for g in records.gpus] for records in (first, second)]
        if all(None not in v and len(set(v)) == len(v) for v in values):
            return key
    return "index"


def _merge(first: SmiRecords, second: SmiRecords) -> list[GpuRecord]:
    """Values from `first` win; `second` fills what `first` does not know."""
    if len(first.gpus) != len(second.gpus):
        why = f"lists {len(second.gpus)} GPU(s) but {first.source} lists {len(first.gpus)}"
        raise InputError(second.source, "gpu", f"{why}; capture both on the same host")
    by = _match_by(first, second)
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
        why = f"usable {usable // MiB} MiB outside total {g.memory_total_bytes // MiB} MiB"
        raise InputError(source, f"gpu[{g.index}].memory", why)
    return usable


def _gpu_facts(g: GpuRecord, row: TopoRow | None, source: str) -> GpuFacts:
    """The record as GpuFacts; what the parsers let through but the facts refuse (used above total,
    say) names the GPU by its index."""
    try:
        return GpuFacts(
            **dataclasses.asdict(g),
            memory_usable_bytes=_usable(g, source),
            **dataclasses.asdict(row or TopoRow({}, None, None)),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputError(source, _error_field(first, f"gpu[{g.index}]."), first["msg"]) from None


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
    facts = [_gpu_facts(g, rows.get(g.index), primary.source) for g in sorted(gpus, key=lambda g: g.index)]
    try:
        return HostFacts(
            driver_version=(from_csv and from_csv.driver_version) or (from_xml and from_xml.driver_version),
            cuda_version=from_xml.cuda_version if from_xml else None,
            gpus=facts,
        )
    except ValidationError as exc:  # the parsers check these too; this keeps the one-line promise
        first = exc.errors()[0]
        raise InputError(primary.source, _error_field(first), first["msg"]) from None


def _read(path: str | Path | None) -> str | None:
    if path is None:
        return None
    try:
        return read_text(path, "nvidia-smi output")  # a dangling symlink, a directory, not UTF-8, ...
    except InputError as err:
        if isinstance(err.__cause__, FileNotFoundError) and not Path(path).is_symlink():
            raise InputError(path, None, "no such file") from err.__cause__  # the wording operators know
        raise


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


@dataclasses.dataclass(frozen=True)
class ProbeOutput:
    """What one probe command did, wherever it ran: exit status (None: not found), stdout, stderr."""

    returncode: int | None
    stdout: str = ""
    stderr: str = ""


def facts_from_outputs(outputs: Mapping[str, ProbeOutput]) -> HostFacts:
    """Facts from PROBE_COMMANDS' outputs, keyed as PROBE_COMMANDS is; the same rules as probe_local.

    The Ansible play runs the commands on a host and hands their outputs here, on the control node."""
    texts = []
    for shown in PROBE_COMMANDS:
        done = outputs.get(shown)
        if done is None or done.returncode is None or (done.returncode == 127 and not done.stdout):
            return HostFacts(probe=Probe(status="absent", detail="nvidia-smi not found on PATH"))
        if done.returncode != 0:
            # Some failures ("couldn't communicate with the NVIDIA driver") are printed on stdout.
            said = [line.strip() for out in (done.stderr, done.stdout) for line in (out or "").splitlines()]
            first = next((line for line in said if line), "no output")
            return HostFacts(probe=Probe(status="failed", detail=f"{shown}: exit {done.returncode}: {first}"))
        texts.append(done.stdout)
    return collect(*texts)


def probe_local(runner: Runner = subprocess.run, timeout: float = 30) -> HostFacts:
    """Run nvidia-smi here. No nvidia-smi, or one that fails (exit 9: no driver, as in most containers),
    gives facts with no GPUs and a probe status saying why: that is a fact about the host, not an error.
    Output that does not parse raises InputError: that is a driver this code does not understand."""
    outputs: dict[str, ProbeOutput] = {}
    for shown, cmd in PROBE_COMMANDS.items():
        try:
            # errors="replace": a byte that is not UTF-8 reaches the parser as U+FFFD, not as a crash here.
            done = runner(
                list(cmd),
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            return HostFacts(probe=Probe(status="absent", detail="nvidia-smi not found on PATH"))
        except subprocess.TimeoutExpired:
            return HostFacts(probe=Probe(status="failed", detail=f"{shown}: no answer within {timeout:g} s"))
        except OSError as err:
            return HostFacts(probe=Probe(status="failed", detail=f"{shown}: cannot run: {err}"))
        outputs[shown] = ProbeOutput(done.returncode, done.stdout or "", done.stderr or "")
        if done.returncode != 0:
            break
    return facts_from_outputs(outputs)


def _links_summary(links: dict[int, str]) -> str:
    counts = Counter(links.values())
    return ", ".join(f"{kind} x{n}" for kind, n in sorted(counts.items()))


def facts_table(facts: HostFacts) -> Table:
    """One row per GPU, labelled by its nvidia-smi index, for humans; the JSON is the record."""
    title = f"GPUs: driver {facts.driver_version or '?'}, CUDA {facts.cuda_version or '?'}"
    if facts.probe.status != "ok":
        title += f" (probe {facts.probe.status}: {facts.probe.detail})"
    table = Table(title=escape(title))
    for header in ("GPU", "Name", "Total GiB", "Reserved MiB", "Usable GiB", "CC", "MIG", "Links", "NUMA"):
        table.add_column(header, justify="left" if header in ("Name", "Links") else "right")
    for g in facts.gpus:
        reserved = None if g.memory_reserved_bytes is None else str(g.memory_reserved_bytes // MiB)
        sizes = (f"{g.memory_total_bytes / GiB:.2f}", reserved, f"{g.memory_usable_bytes / GiB:.2f}")
        rest = (g.compute_capability, g.mig_mode, _links_summary(g.links), g.numa_affinity)
        # Every cell escaped: rich reads "[...]" as markup, and a NUMA affinity is whatever topo printed.
        table.add_row(str(g.index), escape(g.name), *(escape(v or "-") for v in (*sizes, *rest)))
    return table


def load_facts(path: Path) -> HostFacts:
    """Host facts written by `tritonfleet facts --format json`, read back with their invariants.

    Strict: JSON numbers where numbers were written (not "1", 1.0 or true), so that only what
    `tritonfleet facts` could have written passes."""
    text = read_text(path, "host facts")
    try:
        return HostFacts.model_validate_json(text, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputError(
            path,
            _error_field(first),
            f"not host facts from `tritonfleet facts --format json`: {first['msg']}",
        ) from exc
