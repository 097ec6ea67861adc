"""Property tests for every parser in tritonfleet.host.gpus: whatever text comes in, the answer is facts
or one InputError, never another exception; and facts that come out are facts `load_facts` reads back.

Inputs are arbitrary text, the real captures in tests/fixtures/gpu-hosts with lines deleted, duplicated
or swapped, characters replaced and the end cut off, CSV rows of random cells under the real header, random
and broken XML trees (entities included), random topology matrices, and random JSON for load_facts.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from tritonfleet.errors import InputError
from tritonfleet.host.gpus import (
    HostFacts,
    SmiRecords,
    collect,
    facts_table,
    load_facts,
    parse_query_csv,
    parse_smi_xml,
    parse_topo,
)

from helpers import GPU_HOSTS

H100, H200, PCIE4 = GPU_HOSTS / "h100-x1", GPU_HOSTS / "h200-x2", GPU_HOSTS / "synthetic-pcie-x4-nic2"
CSVS = [(h / "smi-query.csv").read_text(encoding="utf-8") for h in (H100, H200)]
XMLS = [(h / "smi-q.xml").read_text(encoding="utf-8") for h in (H100, H200)]
TOPOS = [(h / "smi-topo.txt").read_text(encoding="utf-8") for h in (H100, H200, PCIE4)]
HEADER = CSVS[1].splitlines()[0].split(", ")
FACTS = [
    json.loads(collect(CSVS[0], XMLS[0], TOPOS[0]).model_dump_json()),
    json.loads(collect(CSVS[1], XMLS[1], TOPOS[1]).model_dump_json()),
]

# Each property stays near 150-200 examples: the whole file runs in well under 20 s.
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEWER = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any code point, lone surrogates included (a str can hold one; no file read as UTF-8 can).
any_char = st.characters(exclude_categories=())
any_text = st.text(any_char, max_size=300)
# Characters nvidia-smi output is made of, and some that break parsers: a BOM, CR, NUL, rich markup,
# digits that int() takes but [0-9] does not.
nasty = st.sampled_from(
    [*"\ufeff\r\n\t\x00 ,[]<>&;\"'X-./:0123456789²٣ MiB", "[/]", "[bold]", "\r\n", "GPU", "NV18"]
)
nasty_text = st.lists(st.one_of(nasty, any_char), max_size=40).map("".join)


@st.composite
def spoiled(draw: st.DrawFn, texts: list[str]) -> str:
    """A real capture with, somewhere, a lone surrogate or a field past the csv module's size limit."""
    text = draw(st.sampled_from(texts))
    at = draw(st.integers(0, len(text)))
    bad = draw(st.sampled_from(["\udc80", "\ud800"]) | st.integers(131_073, 131_100).map(lambda n: "x" * n))
    return text[:at] + bad + text[at:]


def parses_or_input_error(parse: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The parser's answer, or None when it raised InputError as one line; anything else fails the test."""
    try:
        return parse(*args, **kwargs)
    except InputError as err:
        assert len(str(err).splitlines()) == 1  # one line, whatever the input held
        return None


@st.composite
def mutated(draw: st.DrawFn, texts: list[str]) -> str:
    """A real capture with random edits: lines deleted, duplicated, swapped or replaced, characters
    substituted or inserted, the end cut off."""
    lines = draw(st.sampled_from(texts)).splitlines(keepends=True)
    for _ in range(draw(st.integers(0, 6))):
        if not lines:
            break
        at = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "replace", "substitute", "insert"]))
        if op == "delete":
            del lines[at]
        elif op == "duplicate":
            lines.insert(at, lines[at])
        elif op == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif op == "replace":
            lines[at] = draw(nasty_text) + "\n"
        else:
            line = lines[at]
            pos = draw(st.integers(0, len(line)))
            cut = pos + (op == "substitute")
            lines[at] = line[:pos] + draw(nasty_text.filter(bool)) + line[cut:]
    text = "".join(lines)
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]
    if draw(st.integers(0, 5)) == 0:
        text = "\ufeff" + text
    if draw(st.integers(0, 5)) == 0:
        text = text.replace("\n", draw(st.sampled_from(["\r\n", "\r"])))
    return text


@pytest.fixture(scope="module")
def facts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where facts are written to be read back (hypothesis refuses function-scoped fixtures: tmp_path)."""
    return tmp_path_factory.mktemp("facts")


def render(facts: HostFacts) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(facts_table(facts))
    return console.export_text()


def facts_or_input_error(
    facts_dir: Path, query_csv: str | None = None, xml: str | None = None, topo: str | None = None
) -> HostFacts | None:
    """collect's answer; facts it returns are shown as a table and read back by load_facts unchanged."""
    facts = parses_or_input_error(collect, query_csv, xml, topo, query_source="q", xml_source="x")
    if facts is not None:
        render(facts)
        path = facts_dir / "collected.json"
        path.write_text(facts.model_dump_json(indent=2), encoding="utf-8")
        assert load_facts(path) == facts
    return facts


# --- parse_query_csv ----------------------------------------------------------------------------------

number = st.one_of(
    st.integers(-10, 200_000).map(str),
    st.integers(-(10**30), 10**30).map(str),
    st.just(str(10**30)),
    st.integers(4290, 4400).map(lambda n: "1" + "0" * n),  # past int()'s digit limit
    st.integers(4290, 4400).map(lambda n: "0" * n + "1"),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)
# sampled_from leans to its first elements: the unit nvidia-smi prints comes first.
unit = st.sampled_from([" MiB", "", "MiB", "  MiB", " KiB", " GiB", " MB", " bytes", " %"])
cell = st.one_of(
    st.builds(lambda n, u: f"{n}{u}", number, unit),
    st.sampled_from(["[N/A]", "[Not Supported]", "[Insufficient Permissions]", "[Unknown Error]", "N/A"]),
    st.sampled_from(["Enabled", "Disabled", "enabled", "DISABLED", "Pending", "9.0", "12.1", "9", "x.y"]),
    st.sampled_from(["GPU-510529ef-fb74-69be-ea8a-5d5aef678539", "00000000:00:06.0", "NVIDIA H100"]),
    nasty_text,
)


def mib(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: f"{n} MiB")


# Per column, what nvidia-smi prints on a sane host ...
GOOD = {
    "name": st.sampled_from(["NVIDIA H100 80GB HBM3", "NVIDIA H200", "[bold]H100", "NVIDIA [/]"]),
    "memory.total [MiB]": mib(2048, 200_000),
    "memory.reserved [MiB]": mib(0, 1024) | st.just("[N/A]"),
    "memory.used [MiB]": mib(0, 1024),
    "memory.free [MiB]": mib(0, 1024),
    "compute_cap": st.sampled_from(["9.0", "8.6", "12.1", "[N/A]"]),
    "mig.mode.current": st.sampled_from(["Disabled", "Enabled", "enabled", "[N/A]", "N/A"]),
    "driver_version": st.sampled_from(["580.159.04", "[N/A]"]),
}
# ... and what it could not, column by column.
huge = st.sampled_from([str(10**30), "1" + "0" * 4300, "0" * 4300 + "1", str(16 << 20), str((16 << 20) + 1)])
memory = st.one_of(huge.map(lambda n: n + " MiB"), st.builds(lambda n, u: n + u, huge | st.just("0"), unit))
BAD = {
    "index": st.sampled_from(["²", "٣", "0x1", "-1", "1023", "1024", "9" * 4400, "[N/A]"]),
    "name": st.sampled_from(["[/]", "", "[Insufficient Permissions]"]),
    **{c: memory for c in HEADER if c.startswith("memory.")},
    "compute_cap": st.sampled_from(["9", "9.0[/]", "x.y", "90"]),
    "mig.mode.current": st.sampled_from(["Pending", "x[/]", "Enabled*"]),
    "uuid": st.just("GPU-00000000-fb74-69be-ea8a-5d5aef678539"),  # two GPUs, one UUID
}
REQUIRED = ["index", "name", "memory.total [MiB]"]


@st.composite
def random_csv(draw: st.DrawFn) -> str:
    """The real header (a column or two dropped, shuffled, oddly spaced) over rows of plausible cells; in
    some rows one cell is something nvidia-smi would not print."""
    dropped = draw(st.sets(st.sampled_from([c for c in HEADER if c not in REQUIRED]), max_size=3))
    if draw(st.sampled_from([False] * 7 + [True])):  # now and then a column the parser needs
        dropped.add(draw(st.sampled_from(REQUIRED)))
    columns = [c for c in draw(st.permutations(HEADER)) if c not in dropped]
    spaced = [draw(st.sampled_from(["", " ", "  "])) + c + draw(st.sampled_from(["", " "])) for c in columns]
    indices = draw(st.lists(st.integers(0, 7), min_size=1, max_size=4, unique=True))
    rows = []
    for i in indices:
        good = {
            **GOOD,
            "index": st.just(str(i)),
            "uuid": st.just(f"GPU-{i:08x}-fb74-69be-ea8a-5d5aef678539"),
            "pci.bus_id": st.just(f"00000000:00:0{i}.0"),
        }
        cells = [draw(good.get(c, cell)) for c in columns]
        if columns and draw(st.booleans()):
            at = draw(st.integers(0, len(cells) - 1))
            cells[at] = draw(BAD.get(columns[at], cell) | cell)
        rows.append(", ".join(c.replace(",", ";") for c in cells))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    return eol.join([",".join(spaced), *rows]) + eol * draw(st.integers(0, 3))


@PROPERTY
@given(st.one_of(any_text, nasty_text, mutated(CSVS), spoiled(CSVS), random_csv(), random_csv()))
def test_query_csv_parses_or_input_error(facts_dir: Path, text: str) -> None:
    records = parses_or_input_error(parse_query_csv, text, "q.csv")
    if records is not None:
        assert isinstance(records, SmiRecords) and records.gpus
        assert len({g.index for g in records.gpus}) == len(records.gpus)
        facts_or_input_error(facts_dir, text)


# --- parse_smi_xml ------------------------------------------------------------------------------------

TAGS = [
    *("nvidia_smi_log", "gpu", "product_name", "fb_memory_usage", "total", "reserved", "used", "free"),
    *("uuid", "mig_mode", "current_mig", "pci", "pci_bus_id", "driver_version", "cuda_version", "x"),
]
xml_text = st.one_of(
    cell,
    st.sampled_from(["&amp;", "&lt;", "&#65;", "&#0;", "&e;", "&undefined;", "<![CDATA[1 MiB]]>"]),
).map(lambda s: s.replace("<", "&lt;") if "CDATA" not in s and "&" not in s else s)


def element(tag: str, children: list[str], text: str) -> str:
    return f"<{tag}>{text}{''.join(children)}</{tag}>"


xml_tree = st.recursive(
    st.builds(lambda t, x: element(t, [], x), st.sampled_from(TAGS), xml_text),
    lambda kids: st.builds(element, st.sampled_from(TAGS), st.lists(kids, max_size=4), xml_text),
    max_leaves=20,
)
DOCTYPES = [
    "",
    '<?xml version="1.0" ?>\n',
    '<?xml version="1.0" encoding="UTF-16"?>',
    '<?xml version="1.0" encoding="bogus"?>',
    '<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">\n',
    '<!DOCTYPE nvidia_smi_log [<!ENTITY e "81559 MiB">]>',
    '<!DOCTYPE nvidia_smi_log [<!ENTITY e SYSTEM "file:///etc/hostname">]>',
    '<!DOCTYPE nvidia_smi_log [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
    '<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">]>',
]


@st.composite
def random_xml(draw: st.DrawFn) -> str:
    body = draw(xml_tree)
    if draw(st.booleans()):  # a plausible root, so that the GPU-level code is reached
        gpus = "".join(draw(st.lists(xml_tree.map(lambda t: f"<gpu>{t}</gpu>"), max_size=3)))
        body = f"<nvidia_smi_log>{gpus}{body}</nvidia_smi_log>"
    text = draw(st.sampled_from(DOCTYPES)) + body
    if draw(st.integers(0, 3)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text


@st.composite
def real_xml_with_values(draw: st.DrawFn) -> str:
    """A real capture with some of the values the parser reads replaced by random cells."""
    text = draw(st.sampled_from(XMLS))
    for tag in draw(st.lists(st.sampled_from(TAGS[2:-1]), max_size=5)):
        start = text.find(f"<{tag}>")
        end = text.find(f"</{tag}>", start)
        if start >= 0 and end >= 0:
            value = draw(xml_text)
            text = text[: start + len(tag) + 2] + value + text[end:]
    return text


@FEWER
@given(st.one_of(any_text, nasty_text, mutated(XMLS), spoiled(XMLS), random_xml(), real_xml_with_values()))
def test_smi_xml_parses_or_input_error(facts_dir: Path, text: str) -> None:
    records = parses_or_input_error(parse_smi_xml, text, "q.xml")
    if records is not None:
        assert [g.index for g in records.gpus] == list(range(len(records.gpus)))
        facts_or_input_error(facts_dir, None, text)


# --- parse_topo ---------------------------------------------------------------------------------------

link = st.one_of(
    st.sampled_from(["X", " X ", "NV18", "NV4", "SYS", "NODE", "PHB", "PXB", "PIX", "", "N/A", "nv1"]),
    nasty_text,
)
label = st.one_of(
    st.integers(0, 5).map(lambda i: f"GPU{i}"),
    st.integers(0, 10**40).map(lambda i: f"GPU{i}"),
    st.integers(4290, 4400).map(lambda n: "GPU1" + "0" * n),
    st.sampled_from(["GPU²", "GPU٣", "NIC0", "CPU Affinity", "NUMA Affinity", "GPU NUMA ID", "", "GPU"]),
)


@st.composite
def random_topo(draw: st.DrawFn) -> str:
    """A matrix of random labels and cells; often square over GPU0..n-1 so that the row code runs."""
    if draw(st.booleans()):
        n = draw(st.integers(1, 4))
        cols = [f"GPU{i}" for i in range(n)] + ["CPU Affinity", "NUMA Affinity", "GPU NUMA ID"]
        affinity = st.sampled_from(["0-31", "N/A", "", "0[/]", "[bold]0"])  # rich markup in a table cell
        rows = [
            [
                f"GPU{i}",
                *(draw(st.sampled_from(["X"] if i == j else ["NV18", "SYS"])) for j in range(n)),
                *(draw(affinity), draw(st.sampled_from(["0", "0[/]"])), "", "N/A"),
            ]
            for i in range(n)
        ]
        if draw(st.booleans()):  # one random cell
            r = draw(st.integers(0, n - 1))
            rows[r][draw(st.integers(0, len(rows[r]) - 1))] = draw(link)
    else:
        cols = draw(st.lists(label, min_size=1, max_size=6))
        rows = [[draw(label), *draw(st.lists(link, max_size=8))] for _ in range(draw(st.integers(0, 5)))]
    sep = draw(st.sampled_from(["\t", "  ", "   "]))
    head = (
        draw(st.sampled_from(["", "\x1b[4m"])) + sep + sep.join(cols) + draw(st.sampled_from(["", "\x1b[0m"]))
    )
    legend = draw(st.sampled_from(["", "\n\nLegend:\n\n  X    = Self\n"]))
    return "\n".join([head, *(sep.join(r) for r in rows)]) + legend


@PROPERTY
@given(st.one_of(any_text, nasty_text, mutated(TOPOS), spoiled(TOPOS), random_topo()))
def test_topo_parses_or_input_error(text: str) -> None:
    rows = parses_or_input_error(parse_topo, text, "topo.txt")
    if rows is not None:
        assert rows and all(me not in row.links for me, row in rows.items())
        assert all(set(row.links) == set(rows) - {me} for me, row in rows.items())


# --- collect ------------------------------------------------------------------------------------------


def maybe(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), strategy)


@PROPERTY
@given(
    maybe(st.one_of(st.sampled_from(CSVS), mutated(CSVS), random_csv())),
    maybe(st.one_of(st.sampled_from(XMLS), mutated(XMLS), real_xml_with_values())),
    maybe(st.one_of(st.sampled_from(TOPOS), mutated(TOPOS), random_topo())),
)
def test_collect_gives_facts_or_input_error(
    facts_dir: Path, query_csv: str | None, xml: str | None, topo: str | None
) -> None:
    facts_or_input_error(facts_dir, query_csv, xml, topo)


# --- load_facts ---------------------------------------------------------------------------------------

json_value = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**30), 10**30),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
        st.sampled_from(["ok", "absent", "failed", "NV18", "X", "9.0", "Enabled", "Disabled", "[/]", "01"]),
    ),
    lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=10) | st.sampled_from(["0", "1"]), kids)
    ),
    max_leaves=15,
)


@st.composite
def edited_facts(draw: st.DrawFn) -> str:
    """Real facts with random values put in at random places, keys dropped and GPUs copied."""
    facts = json.loads(json.dumps(draw(st.sampled_from(FACTS))))
    for _ in range(draw(st.integers(1, 4))):
        node = facts
        for _ in range(draw(st.integers(0, 3))):
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            child = node[draw(st.sampled_from(keys))] if keys else None
            if not isinstance(child, dict | list):
                break
            node = child
        if isinstance(node, dict) and node:
            key = draw(st.sampled_from(sorted(node)))
            op = draw(st.sampled_from(["set", "set", "drop"]))
            if op == "drop":
                del node[key]
            else:
                node[key] = draw(json_value)
        elif isinstance(node, list) and node:
            node.append(json.loads(json.dumps(draw(st.sampled_from(node)))))
    return json.dumps(facts)


json_text = st.one_of(
    json_value.map(json.dumps),
    edited_facts(),
    edited_facts().map(lambda t: t[: len(t) // 2]),
    st.integers(1, 20_000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 20_000).map(lambda n: '{"gpus": ' + "[" * n + "]" * n + "}"),
    st.sampled_from(['{"schema_version": 1e400}', '{"schema_version": ' + "9" * 5000 + "}", "\ufeff{}"]),
    nasty_text,
)


@PROPERTY
@given(json_text)
def test_load_facts_gives_facts_or_input_error(facts_dir: Path, text: str) -> None:
    path = facts_dir / "random.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    facts = parses_or_input_error(load_facts, path)
    if facts is not None:  # what it takes is facts through and through
        render(facts)
        path.write_text(facts.model_dump_json(), encoding="utf-8")
        assert load_facts(path) == facts
