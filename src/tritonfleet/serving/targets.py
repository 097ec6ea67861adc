"""The endpoints a gate checks: one Triton server's HTTP, gRPC and metrics ports, from a URL or an inventory.

A target is `[NAME=]http://HOST:PORT[?grpc=PORT&metrics=PORT]`. Without a query, the gRPC and metrics
ports are the given defaults or, failing those, Triton's own layout: HTTP port + 1 and + 2.
Inventories are read as the JSON of `ansible-inventory --list`; tritonfleet never imports Ansible.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tritonfleet.errors import InputError

# Host variables an inventory may set per host (defaults come from the command line).
ADDRESS_VARS = ("tritonfleet_smoke_address", "ansible_host")
PORT_VARS = {
    "http": "tritonfleet_http_port",
    "grpc": "tritonfleet_grpc_port",
    "metrics": "tritonfleet_metrics_port",
}
# Any one network call to a server, unless the operator says otherwise (smoke gate, suite, clients).
DEFAULT_CALL_TIMEOUT = 60.0
# One host's whole smoke run, a backstop behind the call timeouts.
DEFAULT_HOST_TIMEOUT = 600.0
# Carries the admin header as KEY=VALUE, like tritonserver's --http-restricted-api takes it; an
# environment variable rather than a flag keeps the secret out of process listings.
ADMIN_KEY_ENV = "TRITONFLEET_ADMIN_KEY"
_NAME = re.compile(r"^[A-Za-z0-9[][A-Za-z0-9._:[\]-]*$")


@dataclass(frozen=True)
class Endpoint:
    name: str
    host: str
    http_port: int
    grpc_port: int
    metrics_port: int

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
    http: int | None = None
    grpc: int | None = None
    metrics: int | None = None


def _port(value: object, source: str, field: str) -> int:
    text = str(value).strip()
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise InputError(source, field, f"{value!r} is not a TCP port (1-65535)")
    return int(text)


def _name(name: str, source: str, field: str) -> str:
    if not _NAME.match(name):
        raise InputError(
            source, field, f"{name!r} is not a usable host name (letters, digits and . _ - : only)"
        )
    return name


def parse_target(spec: str, defaults: PortDefaults = PortDefaults(), source: str = "--target") -> Endpoint:
    """One `[NAME=]http://HOST:PORT[?grpc=PORT&metrics=PORT]`; InputError naming the part that is wrong."""
    name, sep, url = spec.partition("=")
    if not sep or "://" in name:
        name, url = "", spec
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise InputError(source, spec, f"not a URL: {exc}") from exc
    if parts.scheme != "http":
        raise InputError(source, spec, "must start with http:// (the server's HTTP endpoint)")
    if not host:
        raise InputError(source, spec, "has no host")
    if parts.path not in ("", "/") or parts.fragment or parts.username:
        raise InputError(source, spec, "give only http://HOST:PORT and the optional ?grpc=&metrics=")
    http_port = port or defaults.http
    if http_port is None:
        raise InputError(source, spec, "has no port and no default HTTP port was given")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(query) - {"grpc", "metrics"})
    if unknown:
        raise InputError(source, spec, f"unknown query key {unknown[0]!r} (expected grpc, metrics)")
    grpc = query.get("grpc", defaults.grpc if defaults.grpc is not None else http_port + 1)
    metrics = query.get("metrics", defaults.metrics if defaults.metrics is not None else http_port + 2)
    return Endpoint(
        name=_name(
            name or f"{host}:{http_port}" if ":" not in host else name or f"[{host}]:{http_port}",
            source,
            spec,
        ),
        host=host,
        http_port=http_port,
        grpc_port=_port(grpc, source, f"{spec}: grpc"),
        metrics_port=_port(metrics, source, f"{spec}: metrics"),
    )


def parse_targets(specs: Iterable[str], defaults: PortDefaults = PortDefaults()) -> list[Endpoint]:
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


def _group_hosts(
    groups: Mapping[str, Any], group: str, source: str, trail: tuple[str, ...] = ()
) -> list[str]:
    entry = groups.get(group)
    if entry is None and any(group in e.get("children", []) for e in groups.values() if isinstance(e, dict)):
        entry = {}  # ansible-inventory lists an empty group only among its parent's children
    if not isinstance(entry, dict):
        raise InputError(source, group, "no such group in the inventory")
    hosts = list(entry.get("hosts", []))
    for child in entry.get("children", []):
        if child not in trail:
            hosts += _group_hosts(groups, child, source, (*trail, group))
    return list(dict.fromkeys(hosts))


def targets_from_inventory(
    inventory: Mapping[str, Any], group: str, defaults: PortDefaults, source: str
) -> list[Endpoint]:
    """The hosts of `group` (children included) in `ansible-inventory --list` JSON, with their ports.

    A host's address is `tritonfleet_smoke_address`, else `ansible_host`, else its inventory name; its
    ports are `tritonfleet_{http,grpc,metrics}_port`, else the defaults given, else (gRPC and metrics)
    Triton's layout next to the HTTP port.
    """
    hostvars = inventory.get("_meta", {}).get("hostvars", {})
    names = _group_hosts(inventory, group, source)
    if not names:
        raise InputError(source, group, "the group has no hosts")
    endpoints = []
    for name in names:
        variables = hostvars.get(name, {})
        address = next((str(variables[v]) for v in ADDRESS_VARS if variables.get(v)), name)
        http_value = variables.get(PORT_VARS["http"], defaults.http)
        if http_value is None:
            raise InputError(source, f"{name}: {PORT_VARS['http']}", "not set, and no --http-port was given")
        http = _port(http_value, source, f"{name}: {PORT_VARS['http']}")
        ports = {"http": http}
        for offset, kind in enumerate(("grpc", "metrics"), start=1):
            value = variables.get(PORT_VARS[kind], getattr(defaults, kind))
            ports[kind] = (
                http + offset if value is None else _port(value, source, f"{name}: {PORT_VARS[kind]}")
            )
        endpoints.append(
            Endpoint(
                name=_name(name, source, name),
                host=address,
                http_port=ports["http"],
                grpc_port=ports["grpc"],
                metrics_port=ports["metrics"],
            )
        )
    _unique(endpoints, source)
    return endpoints
