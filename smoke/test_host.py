"""Host checks: the server is Triton, live and ready, its repository lists models, and its
repository API is closed to callers without the admin key."""

from __future__ import annotations

import pytest
import tritonclient.http as httpclient

from tritonfleet.gates.smoke import Discovery, Settings
from tritonfleet.serving import triton
from tritonfleet.serving.targets import Endpoint
from tritonfleet.serving.triton import TritonError


def test_server_live(http: httpclient.InferenceServerClient, target: Endpoint):
    try:
        live = http.is_server_live()
        metadata = http.get_server_metadata() if live else None
    except Exception as exc:  # geventhttpclient raises socket and parser errors of its own
        pytest.fail(f"{target.http_url}: {triton.describe(exc)}")
    if not live:
        try:
            http.get_server_metadata()
        except Exception:
            pytest.fail(
                f"{target.http_url}: not a Triton server (no /v2/health/live, no server metadata at /v2)"
            )
        pytest.fail(f"{target.http_url}: Triton answers but reports not live")
    if not isinstance(metadata, dict) or metadata.get("name") != "triton":
        pytest.fail(
            f"{target.http_url}: /v2 is not Triton's server metadata: {triton.one_line(metadata, 120)}"
        )


def test_server_ready(http: httpclient.InferenceServerClient, target: Endpoint, discovery: Discovery):
    try:
        ready = http.is_server_ready()
    except Exception as exc:
        pytest.fail(f"{target.http_url}: {triton.describe(exc)}")
    if not ready:
        waiting = [f"{m.name} {m.state or 'UNKNOWN'}" for m in discovery.models if m.state != "READY"]
        detail = f"; not ready: {', '.join(waiting)}" if waiting else ""
        live = "live but not ready" if http.is_server_live() else "neither live nor ready"
        pytest.fail(f"{live} (GET /v2/health/ready is not 200){detail}")


def test_repository_index(discovery: Discovery):
    if discovery.error:
        pytest.fail(discovery.error)
    if not discovery.models:
        pytest.fail("the repository index lists no model")


def _answers_without_key(call) -> bool:
    """True when the API answers a caller without the key, False when Triton refuses it."""
    try:
        call()
    except TritonError as exc:
        if exc.refused:
            return False
        pytest.fail(f"{exc} (expected an answer or a refusal)")
    return True


def test_repository_api_restricted(settings: Settings, target: Endpoint):
    http_index = lambda headers=None: triton.repository_index(target, settings.timeout, headers)  # noqa: E731
    grpc_index = lambda headers=None: triton.grpc_repository_index(target, settings.timeout, headers)  # noqa: E731
    if settings.admin_key is None:
        if _answers_without_key(http_index):
            pytest.skip("no admin key is configured and the model-repository API is open")
        return  # restricted though the gate holds no key: closed, which is what the check asks
    for transport, index in (("HTTP", http_index), ("gRPC", grpc_index)):
        if _answers_without_key(index):
            pytest.fail(f"{transport}: the model-repository API answers without the admin key")
        try:
            index(settings.admin_key.headers)
        except TritonError as exc:
            pytest.fail(f"{transport}: the model-repository API refuses the configured admin key: {exc}")
