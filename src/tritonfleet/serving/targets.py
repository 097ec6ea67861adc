"""The endpoints a gate checks: one Triton server's HTTP, gRPC and metrics ports, from a URL or an inventory.

A target is `[NAME=]http://HOST:PORT[?grpc=PORT&metrics=PORT]`. Without a query, the gRPC and metrics
ports are the given defaults or, failing those, Triton's own layout: HTTP port + 1 and + 2.
Inventories are read as the JSON of `ansible-inventory --list`; tritonfleet never imports Ansible.

Parsing is strict and done here, not by urllib (which drops tabs and newlines, reads port 0 as "no
port", takes `+80` and non-ASCII digits, and keeps the last of a repeated query key): whatever is
not a host name, an IP address or a TCP port in 1-65535 is refused with an InputError naming the part
that is wrong. Only plain http:// is taken (the gate speaks plain HTTP and gRPC to Triton), and no
user info: the admin key comes from $TRITONFLEET_ADMIN_KEY, and a refused target never echoes it.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tritonfleet.errors import InputError

# Host variables an inventory may set per host (defaults come from the command line).
ADDRESS_VARS = ("tritonfleet_smoke_address", "ansible_host")
# The models a host must serve (the deploy sets it to the host's rendered set): the gate fails a host
# whose repository index lacks one, where it would otherwise check only what the index lists.
MODELS_VAR = "tritonfleet_smoke_models"
PORT_VARS = {
    "http": "tritonfleet_http_port",
    "grpc": "tritonfleet_grpc_port",
    "metrics": "tritonfleet_metrics_port",
}
# Any one network call to a server, unless the operator says otherwise (smoke gate, suite, clients).
DEFAULT_CALL_TIMEOUT = 60.0
# One host's whole smoke run, a backstop behind the call timeouts.
DEFAULT_HOST_TIMEOUT = 600.0
# Hosts the smoke gate checks at once.
DEFAULT_PARALLEL = 16
# Carries the admin header as KEY=VALUE, like tritonserver's --http-restricted-api takes it; an
# environment variable rather than a flag keeps the secret out of process listings.
ADMIN_KEY_ENV = "TRITONFLEET_ADMIN_KEY"
_NAME = re.compile(r"[A-Za-z0-9[][A-Za-z0-9._:[\]-]*", re.ASCII)
# A DNS name (underscores allowed, as container and compose service names have them) or an IPv4
# address; a name whose last label is all digits must be an IPv4 address.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?", re.ASCII)
# Where a URL's scheme ends, and a NAME= before it: kept when a refused target is shown redacted.
_SCHEME_PREFIX = re.compile(r"(?:[A-Za-z0-9[][A-Za-z0-9._:[\]-]*=)?[A-Za-z][A-Za-z0-9+.-]*://", re.ASCII)
_QUERY_KEYS = ("grpc", "metrics")
_PORT_KINDS = {"http": "HTTP", "grpc": "gRPC", "metrics": "metrics"}
_SHOWN_CHARS = 160  # of a target or value in an error line
_FORM = "give only http://HOST:PORT and the optional ?grpc=PORT&metrics=PORT"


@dataclass(frozen=True)
class Endpoint:
    name: str
    host: str
    http_port: int
    grpc_port: int
    metrics_port: int
    expected: tuple[str, ...] = ()  # models it must serve (--expect-model, or MODELS_VAR)

    @property
    def http_address(self) -> str:
        """host:port, as tritonclient.http wants it."""
        return f"{self._host_literal}:{self.http_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.http_address}"

    @property
    def grpc_address(self) -> str:
        return f"{self._host_literal}:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self._host_literal}:{self.metrics_port}/metrics"

    @property
    def spec(self) -> str:
        """The target string that parses back to this endpoint."""
        return f"{self.name}={self.http_url}?grpc={self.grpc_port}&metrics={self.metrics_port}"

    @property
    def _host_literal(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host


@dataclass(frozen=True)
class PortDefaults:
    """The command line's --http-port, --grpc-port and --metrics-port; each checked here, by its flag."""

    http: int | None = None
    grpc: int | None = None
    metrics: int | None = None

    def __post_init__(self) -> None:
        for kind in ("http", "grpc", "metrics"):
            value = getattr(self, kind)
            if value is not None:
                # Stored as the int it names ("80" from a caller becomes 80): ports are added to.
                object.__setattr__(self, kind, parse_port(value, f"--{kind}-port", None))


# --- the parts: ports, host names, addresses ------------------------------------------------------


def _clipped(text: str, limit: int = _SHOWN_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shown(text: str) -> str:
    """TEXT as an error line may show it: control characters escaped, never written raw to a terminal."""
    return _clipped(text if text.isprintable() else repr(text)[1:-1])


def _describe(value: object) -> str:
    if isinstance(value, str):
        return _clipped(repr(value) if value.isprintable() else ascii(value))
    if isinstance(value, bool | int | float) or value is None:
        return _clipped(repr(value))
    return f"a {type(value).__name__}"


def parse_port(value: object, source: str = "port", field: str | None = None, what: str = "") -> int:
    """A TCP port in 1-65535: an int, or text of ASCII digits only (no sign, space or other digits)."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        number = int(value)
    if number is not None and 0 < number < 65536:
        return number
    message = f"{what}{_describe(value)} is not a TCP port (1-65535)"
    if number == 0:
        message += ": port 0 is not usable"
    raise InputError(source, field, message)


def _name(name: str, source: str, field: str) -> str:
    if not _NAME.fullmatch(name):
        raise InputError(
            source, field, f"{_describe(name)} is not a usable host name (letters, digits and . _ - : only)"
        )
    return name


def _host_problem(text: str, *, bare_ipv6: bool) -> tuple[str, str | None]:
    """(the host, None), or (text, why it is not a host name, IPv4 or IPv6 address)."""
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1]
        if "%" in inner:
            return text, f"{_describe(inner)}: an IPv6 zone ID (%) is not taken"
        try:
            return str(ipaddress.IPv6Address(inner)), None
        except ValueError:
            return text, f"{_describe(inner)} in brackets is not an IPv6 address"
    if ":" in text:
        if bare_ipv6 and "%" not in text:
            try:
                return str(ipaddress.IPv6Address(text)), None
            except ValueError:
                pass
        return text, f"{_describe(text)} is not a host name or IP address (a port goes in its own setting)"
    if not text.isascii():
        return text, f"{_describe(text)} is not an ASCII host name (give an IDN in its xn-- form)"
    if not _HOSTNAME.fullmatch(text):
        return text, f"{_describe(text)} is not a host name or IP address"
    if text.rstrip(".").rsplit(".", 1)[-1].isdigit():
        try:
            return str(ipaddress.IPv4Address(text)), None
        except ValueError:
            return text, f"{_describe(text)} is not an IPv4 address"
    return text, None


# --- targets: [NAME=]http://HOST:PORT[?grpc=PORT&metrics=PORT] ------------------------------------


def _redacted(spec: str) -> str:
    """SPEC with everything before its last '@' but the NAME= and scheme replaced: it may be a password."""
    kept = _SCHEME_PREFIX.match(spec)
    prefix = kept.group(0) if kept and kept.end() <= spec.rfind("@") else ""
    return _shown(f"{prefix}***@{spec.rpartition('@')[2]}")


def _query_ports(query: str, source: str, shown: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in query.split("&"):
        key, equals, value = item.partition("=")
        if not item:
            raise InputError(source, shown, f"an empty query item (a stray '&'); {_FORM}")
        if key not in _QUERY_KEYS:
            raise InputError(source, shown, f"unknown query key {_describe(key)} (expected grpc, metrics)")
        if not equals:
            raise InputError(source, shown, f"query key {key!r} has no =PORT")
        if key in found:
            raise InputError(source, shown, f"query key {key!r} is given twice")
        found[key] = value
    return found


def _split_authority(authority: str, source: str, shown: str) -> tuple[str, str | None]:
    """(host text, port text or None) of HOST[:PORT] or [IPV6][:PORT]."""
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise InputError(source, shown, "has '[' without ']' (an IPv6 address is written [ADDRESS])")
        host, after = authority[: end + 1], authority[end + 1 :]
        if after and not after.startswith(":"):
            raise InputError(source, shown, f"has {_describe(after)} after the IPv6 address; {_FORM}")
        return host, (after[1:] if after else None)
    if authority.count(":") > 1:
        raise InputError(source, shown, "an IPv6 address goes in brackets: http://[ADDRESS]:PORT")
    host, colon, port = authority.partition(":")
    return host, (port if colon else None)


def parse_target(spec: str, defaults: PortDefaults = PortDefaults(), source: str = "--target") -> Endpoint:
    """One `[NAME=]http://HOST:PORT[?grpc=PORT&metrics=PORT]`; InputError naming the part that is wrong."""
    if not isinstance(spec, str):
        raise InputError(source, None, f"{_describe(spec)} is not a target (text)")
    if "@" in spec:
        # User info: never echo it, it may be a password.
        raise InputError(
            source,
            _redacted(spec),
            "has user info (USER:PASSWORD@): a target takes no credentials; give the admin key as "
            f"HEADER=VALUE in ${ADMIN_KEY_ENV}",
        )
    shown = _shown(spec)
    scheme_at = spec.find("://")
    if scheme_at < 0:
        raise InputError(source, shown, "must start with http:// (the server's HTTP endpoint)")
    name, named, scheme = spec[:scheme_at].rpartition("=")
    if scheme.lower() != "http":
        why = "; https is not supported: the gate speaks plain HTTP" if scheme.lower() == "https" else ""
        raise InputError(source, shown, f"must start with http:// (the server's HTTP endpoint{why})")
    if named and not name:
        raise InputError(source, shown, "has '=' but no NAME before it")
    rest, hash_mark, _ = spec[scheme_at + 3 :].partition("#")
    if hash_mark:
        raise InputError(source, shown, f"has a #fragment; {_FORM}")
    rest, _, query = rest.partition("?")
    authority, _, path = rest.partition("/")
    if path:
        raise InputError(source, shown, f"has a path; {_FORM}")
    host_text, port_text = _split_authority(authority, source, shown)
    if host_text in ("", "[]"):
        raise InputError(source, shown, "has no host")
    host, problem = _host_problem(host_text, bare_ipv6=False)
    if problem:
        raise InputError(source, shown, problem)
    host = host.lower()
    if port_text is None:
        if defaults.http is None:
            raise InputError(source, shown, "has no port and no default HTTP port was given")
        http_port = defaults.http
    elif not port_text:
        raise InputError(source, shown, "has ':' but no port after it")
    else:
        http_port = parse_port(port_text, source, shown, "HTTP port ")
    given = _query_ports(query, source, shown) if query else {}
    ports = {"http": http_port}
    for offset, kind in enumerate(_QUERY_KEYS, start=1):
        field = f"{shown}: {kind}"
        if kind in given:
            ports[kind] = parse_port(given[kind], source, field)
        elif getattr(defaults, kind) is not None:
            ports[kind] = getattr(defaults, kind)
        else:
            ports[kind] = _beside(http_port, offset, source, field, f"?{kind}=PORT or --{kind}-port")
    _distinct(ports, source, shown)
    literal = f"[{host}]" if ":" in host else host
    return Endpoint(
        name=_name(name, source, shown) if named else f"{literal}:{http_port}",
        host=host,
        http_port=ports["http"],
        grpc_port=ports["grpc"],
        metrics_port=ports["metrics"],
    )


def _distinct(ports: Mapping[str, int], source: str, field: str) -> None:
    """Two kinds on one port is a typo (Triton listens on three), and a check would read the wrong one."""
    seen: dict[int, str] = {}
    for kind, port in ports.items():
        if port in seen:
            raise InputError(
                source, field, f"the {_PORT_KINDS[seen[port]]} and {_PORT_KINDS[kind]} ports are both {port}"
            )
        seen[port] = kind


def _beside(http: int, offset: int, source: str, field: str, remedy: str) -> int:
    """Triton's layout: the port `offset` above the HTTP port, when that is still a TCP port."""
    if http + offset > 65535:
        raise InputError(
            source,
            field,
            f"not given, and the HTTP port + {offset} ({http + offset}) is not a TCP port; give {remedy}",
        )
    return http + offset


def parse_targets(specs: Iterable[str], defaults: PortDefaults = PortDefaults()) -> list[Endpoint]:
    """Every target; two of one name are refused (two names of one server are not: bench-smoke uses them)."""
    endpoints = [parse_target(spec, defaults) for spec in specs]
    _unique(endpoints, "--target")
    return endpoints


def _unique(endpoints: list[Endpoint], source: str) -> None:
    seen: set[str] = set()
    for endpoint in endpoints:
        if endpoint.name in seen:
            raise InputError(
                source, endpoint.name, "the same host name is given twice; name targets NAME=URL"
            )
        seen.add(endpoint.name)


# --- inventories: the JSON of `ansible-inventory --list` -------------------------------------------


def _members(groups: Mapping[str, Any], group: str, key: str, source: str) -> list[str]:
    """A group's `hosts` or `children`; a group listed only as a child has neither."""
    entry = groups.get(group, {})
    if not isinstance(entry, Mapping):
        raise InputError(
            source, _shown(group), "not an object in the inventory's JSON (not ansible-inventory?)"
        )
    items = entry.get(key, [])
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise InputError(
            source, _shown(group), f"its {key} are not a list of names (not ansible-inventory --list JSON?)"
        )
    return items


def _known_groups(groups: Mapping[str, Any], source: str) -> list[str]:
    """Every group: the top-level ones, and the empty ones --list names only among a parent's children."""
    known = dict.fromkeys(groups)
    for group in list(groups):
        known.update(dict.fromkeys(_members(groups, group, "children", source)))
    return list(known)


def _no_such_group(group: str, known: list[str]) -> str:
    close = difflib.get_close_matches(group, known, n=1)
    listed = sorted(known)
    shown = ", ".join(_shown(g) for g in listed[:20]) + (
        f" and {len(listed) - 20} more" if len(listed) > 20 else ""
    )
    hint = f"; did you mean {_shown(close[0])}?" if close else ""
    return f"no such group in the inventory{hint} (its groups: {shown or 'none'})"


def _walk(groups: Mapping[str, Any], group: str, source: str) -> Iterator[str]:
    """The hosts of `group` and of all its children, depth first, each group once (a cycle cannot loop)."""
    visited: set[str] = set()
    stack = [iter([group])]
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
        elif child not in visited:
            visited.add(child)
            yield from _members(groups, child, "hosts", source)
            stack.append(iter(_members(groups, child, "children", source)))


def _group_hosts(inventory: Mapping[str, Any], group: str, source: str) -> list[str]:
    groups = {key: value for key, value in inventory.items() if key != "_meta"}
    known = _known_groups(groups, source)
    if group not in known:
        raise InputError(source, _shown(group), _no_such_group(group, known))
    return list(dict.fromkeys(_walk(groups, group, source)))


def _variable(variables: Mapping[str, Any], name: str, var: str, source: str) -> Any:
    value = variables[var]
    if value is None:
        raise InputError(source, f"{_shown(name)}: {var}", "is null; give a value or remove the variable")
    return value


def _address(name: str, variables: Mapping[str, Any], source: str) -> str:
    """The host's address: the first of ADDRESS_VARS that is set, else its inventory name."""
    for var in ADDRESS_VARS:
        if var in variables:
            field = f"{_shown(name)}: {var}"
            value = _variable(variables, name, var, source)
            if not isinstance(value, str):
                raise InputError(source, field, f"{_describe(value)} is not a host name or IP address")
            if not value.strip():
                blank = f"{_describe(value)} is only whitespace" if value else "is empty"
                raise InputError(source, field, f"{blank}; give the host name or IP address")
            if "://" in value:
                raise InputError(
                    source, field, f"{_describe(value)} is a URL; give the host name or address alone"
                )
            host, problem = _host_problem(value, bare_ipv6=True)
            if problem:
                raise InputError(source, field, problem)
            return host
    host, problem = _host_problem(name, bare_ipv6=True)
    if problem:
        raise InputError(source, _shown(name), f"{problem}; set {ADDRESS_VARS[1]} for it")
    return host


def _inventory_ports(name: str, variables: Mapping[str, Any], defaults: PortDefaults, source: str) -> dict:
    http_var = PORT_VARS["http"]
    if http_var in variables:
        http = parse_port(_variable(variables, name, http_var, source), source, f"{_shown(name)}: {http_var}")
    elif defaults.http is not None:
        http = defaults.http
    else:
        raise InputError(source, f"{_shown(name)}: {http_var}", "not set, and no --http-port was given")
    ports = {"http": http}
    for offset, kind in enumerate(_QUERY_KEYS, start=1):
        var, field = PORT_VARS[kind], f"{_shown(name)}: {PORT_VARS[kind]}"
        if var in variables:
            ports[kind] = parse_port(_variable(variables, name, var, source), source, field)
        elif getattr(defaults, kind) is not None:
            ports[kind] = getattr(defaults, kind)
        else:
            ports[kind] = _beside(http, offset, source, field, f"{var} or --{kind}-port")
    return ports


def parse_model_names(value: object, source: str, field: str | None) -> tuple[str, ...]:
    """A list of model names (an inventory variable or the --expect-model flags)."""
    if not isinstance(value, list | tuple):
        raise InputError(source, field, f"{_describe(value)} is not a list of model names")
    names = []
    for item in value:
        if not isinstance(item, str) or not item.strip() or item != item.strip() or "/" in item:
            raise InputError(source, field, f"{_describe(item)} is not a model name")
        if item not in names:
            names.append(item)
    return tuple(names)


def targets_from_inventory(
    inventory: Mapping[str, Any],
    group: str,
    defaults: PortDefaults,
    source: str,
    expected: tuple[str, ...] = (),
) -> list[Endpoint]:
    """The hosts of `group` (children included) in `ansible-inventory --list` JSON, with their ports.

    A host's address is `tritonfleet_smoke_address`, else `ansible_host`, else its inventory name; its
    ports are `tritonfleet_{http,grpc,metrics}_port`, else the defaults given, else (gRPC and metrics)
    Triton's layout next to the HTTP port; the models it must serve are `tritonfleet_smoke_models`,
    else `expected`. A variable that is set must be right (null, empty or of the
    wrong type is refused, not skipped), and two hosts that reach one server (address and HTTP port) are
    refused: one of them would go unchecked.
    """
    if not isinstance(inventory, Mapping):
        raise InputError(source, None, "not the JSON of ansible-inventory --list (not an object)")
    meta = inventory.get("_meta", {})
    hostvars = meta.get("hostvars", {}) if isinstance(meta, Mapping) else None
    if not isinstance(hostvars, Mapping):
        raise InputError(
            source, "_meta", "its hostvars are not an object (not ansible-inventory --list JSON?)"
        )
    names = _group_hosts(inventory, group, source)
    if not names:
        raise InputError(source, _shown(group), "the group has no hosts")
    endpoints: list[Endpoint] = []
    servers: dict[tuple[str, int], str] = {}
    for name in names:
        variables = hostvars.get(name, {})
        if not isinstance(variables, Mapping):
            raise InputError(source, _shown(name), "its hostvars are not an object (not ansible-inventory?)")
        endpoint_name = _name(name, source, _shown(name))
        address = _address(name, variables, source)
        ports = _inventory_ports(name, variables, defaults, source)
        _distinct(ports, source, _shown(name))
        server = (address.lower(), ports["http"])
        if server in servers:
            literal = f"[{address}]" if ":" in address else address
            raise InputError(
                source,
                _shown(name),
                f"reaches the same server as {servers[server]} ({literal}:{ports['http']}); "
                "each inventory host must be a server of its own",
            )
        servers[server] = name
        models = (
            parse_model_names(
                _variable(variables, name, MODELS_VAR, source), source, f"{_shown(name)}: {MODELS_VAR}"
            )
            if MODELS_VAR in variables
            else expected
        )
        endpoints.append(
            Endpoint(
                name=endpoint_name,
                host=address,
                http_port=ports["http"],
                grpc_port=ports["grpc"],
                metrics_port=ports["metrics"],
                expected=models,
            )
        )
    _unique(endpoints, source)
    return endpoints
