"""Property tests for the smoke gate's input parsers: targets, inventories' `--list` JSON, the admin key.

Whatever comes in, the answer is endpoints whose ports are TCP ports (1-65535) and whose hosts are host
names or IP addresses, or one InputError on one printable line that never shows a password or admin key;
never another exception. Inputs are arbitrary text, URL-like text built from random schemes, user info,
hosts, ports (0, negative, huge, signed, non-ASCII digits) and query strings, and random JSON shaped like
`ansible-inventory --list` output with random types wherever a type could be wrong.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tritonfleet.errors import InputError
from tritonfleet.gates.smoke import parse_admin_key
from tritonfleet.serving.targets import (
    ADDRESS_VARS,
    PORT_VARS,
    Endpoint,
    PortDefaults,
    parse_target,
    parse_targets,
    targets_from_inventory,
)

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HOST = re.compile(r"[A-Za-z0-9._:-]+", re.ASCII)
SECRET = "Zz9Secret"  # never a host, port or name below


def check_endpoint(endpoint: Endpoint) -> None:
    for port in (endpoint.http_port, endpoint.grpc_port, endpoint.metrics_port):
        assert type(port) is int and 1 <= port <= 65535, endpoint
    assert endpoint.host and HOST.fullmatch(endpoint.host), endpoint
    assert endpoint.name and endpoint.name.isprintable() and endpoint.name.isascii(), endpoint


def check_error(error: InputError) -> str:
    line = error.line()
    assert "\n" not in line and line.isprintable(), line
    assert SECRET not in line, line
    return line


def parsed(spec: str, defaults: PortDefaults) -> Endpoint | None:
    try:
        endpoint = parse_target(spec, defaults)
    except InputError as error:
        check_error(error)
        return None
    check_endpoint(endpoint)
    assert parse_target(endpoint.spec) == endpoint  # the spec the suite is handed parses back the same
    return endpoint


# --- targets -----------------------------------------------------------------------------------------


def mostly(good: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    """GOOD four times in five: each part of an input is right often enough for the whole to parse."""
    return st.sampled_from([good, good, good, good, bad]).flatmap(lambda chosen: chosen)


defaults = st.builds(
    PortDefaults,
    st.none() | st.integers(1, 65535),
    st.none() | st.integers(1, 65535),
    st.none() | st.integers(1, 65535),
)
BAD_PORTS = ["0", "00", "65536", "+8000", "-1", "8_000", " 80", "80 ", "\u0663", "\u00b2", "\uff18\uff10",
             "8000\n", "9" * 30, "", "0x50", "1e3", "%38"]  # fmt: skip
ports = mostly(
    st.integers(1, 65533).map(str) | st.sampled_from(["1", "65533", "08000"]),
    st.integers(-70000, 140000).map(str) | st.sampled_from(BAD_PORTS) | st.text(max_size=6),
)
GOOD_HOSTS = ["gpu-a1", "GPU-A1.example", "triton_cpu", "10.0.0.1", "[::1]", "[fd00::7]", "xn--bcher-kva.de",
              "h.", "localhost", "[FD00:0::7]"]  # fmt: skip
BAD_HOSTS = ["999.1.1.1", "10.1", "::1", "[fe80::1%25eth0]", "[]", "", "bücher.de", "-h", "a..b", "my host",
             "h\t", "h\x00", "h\u200b", "8000", "[gpu-a1]", "[::1", "h]"]  # fmt: skip
hosts = mostly(
    st.sampled_from(GOOD_HOSTS)
    | st.from_regex(r"[a-z0-9][a-z0-9_-]{0,8}(\.[a-z][a-z0-9-]{0,5}){0,2}", fullmatch=True)
    | st.ip_addresses(v=4).map(str)
    | st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
    st.sampled_from(BAD_HOSTS) | st.text(max_size=8),
)
schemes = mostly(
    st.sampled_from(["http", "HTTP", "Http"]),
    st.sampled_from(["https", "ftp", "grpc", "", "http:", "http:/", "h ttp"]) | st.text(max_size=4),
)
names = mostly(
    st.sampled_from(["", "", "gpu-a1=", "[::1]:8000=", "h.1_a:b="]),
    st.sampled_from(["a=b=", "=", "bad name=", "n\n=", "_x="]) | st.text(max_size=6).map(lambda t: t + "="),
)
userinfo = mostly(
    st.just(""), st.sampled_from([f":{SECRET}@", f"admin:{SECRET}@", f"{SECRET}@", f"u:{SECRET}/x@", "@"])
)
query_keys = mostly(
    st.sampled_from(["grpc", "metrics"]), st.sampled_from(["grcp", "", "GRPC"]) | st.text(max_size=4)
)
query_items = mostly(st.tuples(query_keys, ports).map("=".join), query_keys | st.just(""))
queries = st.lists(query_items, max_size=3).map("&".join)
tails = mostly(
    st.sampled_from(["", "/"]), st.sampled_from(["/v2", "//", "/?", "#", "#x"]) | st.text(max_size=3)
)


@st.composite
def urlish(draw: st.DrawFn) -> str:
    spec = draw(names) + draw(schemes) + "://" + draw(userinfo) + draw(hosts)
    if draw(st.integers(0, 4)):
        spec += ":" + draw(ports)
    spec += draw(tails)
    if draw(st.booleans()):
        spec += "?" + draw(queries)
    return spec


@PROPERTY
@given(st.text(max_size=60), defaults)
def test_any_text_is_an_endpoint_or_one_input_error(spec: str, port_defaults: PortDefaults):
    parsed(spec, port_defaults)


@PROPERTY
@given(urlish(), defaults)
def test_url_like_text_is_an_endpoint_or_one_input_error(spec: str, port_defaults: PortDefaults):
    endpoint = parsed(spec, port_defaults)
    if SECRET in spec:
        assert endpoint is None  # user info is always refused


@PROPERTY
@given(st.lists(urlish() | st.text(max_size=20), max_size=4), defaults)
def test_lists_of_targets(specs: list[str], port_defaults: PortDefaults):
    try:
        endpoints = parse_targets(specs, port_defaults)
    except InputError as error:
        check_error(error)
        return
    for endpoint in endpoints:
        check_endpoint(endpoint)
    assert len({e.name for e in endpoints}) == len(endpoints)


@PROPERTY
@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)))
def test_port_defaults_are_ports_or_one_input_error(value: object):
    for kind in ("http", "grpc", "metrics"):
        try:
            made = PortDefaults(**{kind: value})  # type: ignore[arg-type]
        except InputError as error:
            assert check_error(error).startswith(f"--{kind}-port: ")
            continue
        port = getattr(made, kind)
        assert port is None or (type(port) is int and 1 <= port <= 65535)


# --- inventories: `ansible-inventory --list` JSON ----------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
GROUPS = ["all", "ungrouped", "fleet", "canary", "rack1", "row"]
group_names = mostly(st.sampled_from(GROUPS), st.text(max_size=4))
host_names = mostly(
    st.sampled_from(["gpu-a1", "gpu-a2", "gpu-a3", "10.0.0.1", "fd00::1", "GPU-A1", "h.example"]),
    st.sampled_from(["bad name", "h\x1b", "", "_h", "h:80", "http://h"]) | st.text(max_size=5),
)
port_values = mostly(
    st.integers(1, 65533) | st.integers(1, 65533).map(str),
    st.integers(-5, 70000)
    | st.integers(0, 70000).map(str)
    | st.sampled_from([None, True, False, 8000.0, "abc", "", " 8000", "\u0663", ["8000"], {"port": 8000}]),
)
address_values = mostly(
    hosts.map(lambda h: h[1:-1] if h.startswith("[") and h.endswith("]") else h),
    st.sampled_from([None, "", "   ", "http://10.0.0.1", "10.0.0.1:22", 10, ["10.0.0.1"], "GPU-A1", "[::1]"])
    | json_values,
)
hostvars_entries = mostly(
    st.fixed_dictionaries(
        {},
        optional={
            **{var: address_values for var in ADDRESS_VARS},
            **{var: port_values for var in PORT_VARS.values()},
            "other": json_values,
        },
    ),
    json_values,
)
metas = mostly(
    st.fixed_dictionaries(
        {"hostvars": mostly(st.dictionaries(host_names, hostvars_entries, max_size=5), json_values)},
        optional={"profile": st.just("inventory_legacy")},
    ),
    json_values,
)
inventory_defaults = mostly(
    st.builds(PortDefaults, st.integers(1, 65535), st.none() | st.integers(1, 65535)), defaults
)


@st.composite
def listings(draw: st.DrawFn) -> tuple[dict, str]:
    """(`--list` JSON, the group asked for): groups that name each other and hosts that have hostvars."""
    groups = draw(st.lists(group_names, min_size=1, max_size=5, unique=True))
    pool = draw(st.lists(host_names, min_size=1, max_size=5, unique=True))
    children = mostly(st.lists(st.sampled_from([*groups, "empty"]), max_size=2), json_values)
    entries = st.fixed_dictionaries(
        {"hosts": mostly(st.lists(st.sampled_from(pool), min_size=1, max_size=3), st.just([]) | json_values)},
        optional={"children": children, "vars": json_values},
    ) | st.fixed_dictionaries({}, optional={"children": children})
    inventory: dict = {group: draw(mostly(entries, json_values)) for group in groups}
    hostvars = {name: draw(hostvars_entries) for name in pool if draw(st.integers(0, 3))}
    inventory["_meta"] = draw(mostly(st.just({"hostvars": hostvars}), metas))
    return inventory, draw(mostly(st.sampled_from(groups), group_names))


def from_inventory(inventory: object, group: str, port_defaults: PortDefaults) -> None:
    try:
        endpoints = targets_from_inventory(inventory, group, port_defaults, "hosts.yml")  # type: ignore[arg-type]
    except InputError as error:
        assert check_error(error).startswith("hosts.yml")
        return
    assert endpoints
    for endpoint in endpoints:
        check_endpoint(endpoint)
    assert len({e.name for e in endpoints}) == len(endpoints)
    assert len({(e.host.lower(), e.http_port) for e in endpoints}) == len(endpoints)


@PROPERTY
@given(listings(), inventory_defaults)
def test_inventory_json_gives_endpoints_or_one_input_error(listing: tuple[dict, str], port_defaults):
    from_inventory(*listing, port_defaults)


@PROPERTY
@given(json_values, group_names, defaults)
def test_any_json_gives_endpoints_or_one_input_error(inventory: object, group: str, port_defaults):
    from_inventory(inventory, group, port_defaults)


# --- the admin key -------------------------------------------------------------------------------------

ADMIN_KEY_ERRORS = (
    "TRITONFLEET_ADMIN_KEY: must be HEADER=VALUE, as given to tritonserver --http-restricted-api",
)


@PROPERTY
@given(st.one_of(st.text(max_size=30), st.tuples(st.text(max_size=8), st.text(max_size=12)).map("=".join)))
def test_any_admin_key_text_is_a_header_or_one_unechoing_error(text: str):
    try:
        key = parse_admin_key(text)
    except InputError as error:
        line = check_error(error)
        assert line.startswith(ADMIN_KEY_ERRORS[0])
        # Only fixed wording: nothing of the text (header or secret) is echoed.
        assert line.removeprefix(ADMIN_KEY_ERRORS[0]) in (
            "",
            "; the HEADER may hold only letters, digits and - _ .",
            "; the VALUE must be printable ASCII, without control characters or surrounding spaces",
        )
        return
    if not text:
        assert key is None
        return
    assert key is not None
    ((header, value),) = key.headers.items()
    assert re.fullmatch(r"[a-z0-9_.-]+", header)
    assert value and value.isascii() and value.isprintable() and value == value.strip()
    assert text.partition("=")[2] == value
