"""`tritonfleet smoke`: the post-deploy gate, the smoke suite run against every host at once."""

from __future__ import annotations

import argparse

from tritonfleet.cli.common import file_arg, finite_float, path_arg, tcp_port, whole_number
from tritonfleet.serving.targets import (
    ADMIN_KEY_ENV,
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_HOST_TIMEOUT,
    DEFAULT_PARALLEL,
    MODELS_VAR,
    PORT_VARS,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Runs the smoke suite against each host in parallel. Exit 0: every check passed; 1: a check "
        "failed; 2: the gate could not run (bad arguments, a host unreachable). An admin key for a "
        f"restricted model-repository API is read from ${ADMIN_KEY_ENV} as HEADER=VALUE."
    )
    parser.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="[NAME=]URL",
        help="http://HOST:PORT[?grpc=PORT&metrics=PORT] (repeatable); gRPC and metrics default to "
        "--grpc-port/--metrics-port, else the HTTP port + 1 and + 2",
    )
    parser.add_argument("--inventory", type=path_arg, metavar="FILE", help="an Ansible inventory")
    parser.add_argument("--group", metavar="NAME", help="the inventory's host group to check")
    for kind, variable in PORT_VARS.items():
        parser.add_argument(
            f"--{kind}-port",
            type=tcp_port,
            metavar="PORT",
            help=f"default {kind} port, for targets without one and inventory hosts without {variable}",
        )
    parser.add_argument(
        "--model", action="append", default=[], metavar="NAME", help="only this model (default: all)"
    )
    parser.add_argument(
        "--expect-model",
        action="append",
        default=[],
        metavar="NAME",
        help="a model every host must serve: fail a host whose repository index lacks it (repeatable; "
        f"an inventory host's {MODELS_VAR} replaces these)",
    )
    parser.add_argument("--junit-xml", type=file_arg, metavar="FILE", help="write a JUnit XML report")
    parser.add_argument("--json", type=file_arg, metavar="FILE", help="write a JSON report")
    parser.add_argument(
        "--call-timeout",
        type=finite_float(0, 86400, low_open=True),
        default=DEFAULT_CALL_TIMEOUT,
        metavar="S",
        help=f"for any one network call (default {DEFAULT_CALL_TIMEOUT:g})",
    )
    parser.add_argument(
        "--host-timeout",
        type=finite_float(0, 86400, low_open=True),
        default=DEFAULT_HOST_TIMEOUT,
        metavar="S",
        help=f"for one host's whole run (default {DEFAULT_HOST_TIMEOUT:g})",
    )
    parser.add_argument(
        "--parallel",
        type=whole_number(1, 1024),
        default=DEFAULT_PARALLEL,
        metavar="N",
        help=f"hosts checked at once (default {DEFAULT_PARALLEL})",
    )
    parser.add_argument(
        "--suite", type=path_arg, metavar="DIR", help="the smoke suite (default: the one shipped)"
    )


def validate(args: argparse.Namespace) -> None:
    import os

    from tritonfleet.errors import InputError
    from tritonfleet.files import check_writable_destination

    if args.target and args.inventory:
        raise InputError("--target", None, "give --target or --inventory, not both")
    if args.group and not args.inventory:
        raise InputError("--group", None, "only with --inventory")
    if args.inventory and not args.group:
        raise InputError("--group", None, "required with --inventory: the host group to check")
    if not args.target and not args.inventory:
        raise InputError(
            "--target", None, "give at least one --target http://HOST:PORT, or --inventory and --group"
        )
    # Report paths are checked before any host runs, not after minutes of checks.
    reports = [
        (flag, path) for flag, path in (("--json", args.json), ("--junit-xml", args.junit_xml)) if path
    ]
    for flag, path in reports:
        check_writable_destination(path, f"the {flag} report")
    # realpath, not Path.resolve: it never raises (Python 3.12's resolve does on a symlink loop).
    where = {flag: os.path.realpath(path) for flag, path in reports}
    if len(where) == 2 and where["--json"] == where["--junit-xml"]:
        raise InputError("--json", str(args.json), "is also the --junit-xml report; give two files")
    if args.inventory is not None:
        for flag, path in reports:
            if where[flag] == os.path.realpath(args.inventory):
                raise InputError(flag, str(path), "is the --inventory file; a report would overwrite it")


def _endpoints(args: argparse.Namespace):
    import dataclasses

    from tritonfleet.host import inventory
    from tritonfleet.serving import targets

    defaults = targets.PortDefaults(args.http_port, args.grpc_port, args.metrics_port)
    expected = targets.parse_model_names(args.expect_model, "--expect-model", None)
    if args.inventory:
        hosts = inventory.read(args.inventory)
        return targets.targets_from_inventory(hosts, args.group, defaults, str(args.inventory), expected)
    return [dataclasses.replace(e, expected=expected) for e in targets.parse_targets(args.target, defaults)]


def run(args: argparse.Namespace) -> int:
    import json
    import os

    from tritonfleet.errors import InputError
    from tritonfleet.files import write_atomic
    from tritonfleet.gates import runner, smoke

    admin_key = os.environ.get(ADMIN_KEY_ENV)
    smoke.parse_admin_key(admin_key)
    suite = args.suite or runner.default_suite()
    if not (suite / "pytest.ini").is_file():
        raise InputError(suite, None, "not the smoke suite (no pytest.ini); pass --suite DIR")
    endpoints = _endpoints(args)
    options = runner.Options(
        suite=suite,
        models=args.model,
        call_timeout=args.call_timeout,
        host_timeout=args.host_timeout,
        parallel=args.parallel,
        admin_key=admin_key,
    )
    print(f"smoke: checking {len(endpoints)} host(s): {', '.join(e.name for e in endpoints)}", flush=True)

    def show(host: runner.HostResult) -> None:
        for line in [*runner.host_lines(host), runner.host_summary(host)]:
            print(line, flush=True)

    result = runner.run_gate(endpoints, options, on_host=show)
    if args.json:
        write_atomic(args.json, json.dumps(runner.report(result), indent=2) + "\n", "the --json report")
    if args.junit_xml:
        write_atomic(args.junit_xml, runner.junit(result), "the --junit-xml report")
    print(runner.gate_summary(result), flush=True)
    return result.exit_code
