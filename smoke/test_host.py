"""Host checks: the server is Triton, live and ready, its repository lists models, and its
repository API is closed to callers without the admin key."""

from __future__ import annotations

import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from tritonfleet import triton
from tritonfleet.smoke import Discovery, Settings
from tritonfleet.targets import Endpoint
from tritonfleet.triton import TritonError


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
        pytest.fail(f"live but not ready (GET /v2/health/ready is not 200){detail}")


def test_repository_index(discovery: Discovery):
    if discovery.error:
        pytest.fail(discovery.error)
    if not discovery.models:
        pytest.fail("the repository index lists no model")


def test_repository_api_restricted(settings: Settings, target: Endpoint):
    if settings.admin_key is None:
        try:
            triton.repository_index(target, settings.timeout)
        except TritonError:
            return  # restricted, and the gate holds no key: the API is closed, which is the point
        pytest.skip("no admin key is configured and the model-repository API is open")
    try:
        triton.repository_index(target, settings.timeout)
    except TritonError as exc:
        if "403" not in str(exc) and "restricted" not in str(exc).lower():
            pytest.fail(f"HTTP repository index without the key failed, but not as a refusal: {exc}")
    else:
        pytest.fail("HTTP: the model-repository API answered without the admin key")
    client = grpcclient.InferenceServerClient(target.grpc_address)
    try:
        client.get_model_repository_index(client_timeout=settings.timeout)
    except Exception as exc:
        if "restricted" not in str(exc).lower() and "PERMISSION_DENIED" not in str(exc):
            pytest.fail(
                f"gRPC repository index without the key failed, but not as a refusal: {triton.describe(exc)}"
            )
    else:
        pytest.fail("gRPC: the model-repository API answered without the admin key")
    finally:
        client.close()
    try:
        triton.repository_index(target, settings.timeout, settings.admin_key.headers)
    except TritonError as exc:
        pytest.fail(f"the model-repository API refuses the configured admin key: {exc}")
