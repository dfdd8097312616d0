"""igw.bbr.server: a whole BBR on real ports: ext_proc, gRPC health, guarded /metrics, adapters."""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import socket
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as ext_proc_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as ext_proc_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from igw.bbr.cli import parse_args
from igw.bbr.registry import PluginSpec
from igw.bbr.server import BbrOptions, BbrService
from igw.common.testing.kube_api import FakeKubeApi

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
MODEL = "x-gateway-model-name"
BASE = "x-gateway-base-model-name"
SERVING = health_pb2.HealthCheckResponse.SERVING
OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD

ADAPTERS_YAML = f"""\
baseModels:
  - name: llama
    baseModel: {LLAMA}
    adapters: [sql-lora, chat-lora]
"""


def bbr_options(adapters_file: Path | None = None) -> BbrOptions:
    """Options serving on loopback ports the OS picks (read back from the started service)."""
    return BbrOptions(
        grpc_port=0,
        grpc_health_port=0,
        metrics_port=0,
        host="127.0.0.1",
        kubernetes="off",
        tracing=False,
        secure_serving=False,
        adapters_file=adapters_file,
        metrics_endpoint_auth=False,  # no cluster here; the auth tests turn it on with a fake one
    )


@pytest.fixture
def adapters_file(tmp_path: Path) -> Path:
    path = tmp_path / "adapters.yaml"
    path.write_text(ADAPTERS_YAML, encoding="utf-8")
    return path


@pytest.fixture
async def service(adapters_file: Path) -> AsyncIterator[BbrService]:
    bbr = BbrService(bbr_options(adapters_file))
    await bbr.start()
    try:
        yield bbr
    finally:
        await bbr.stop()


async def health_check(port: int, service: str = "") -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # typeshed declares no RPC methods
        reply: health_pb2.HealthCheckResponse = await stub.Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
        return reply.status


async def route(port: int, body: bytes, **headers: str) -> ext_proc_pb2.ProcessingResponse:
    """One buffered request through the ext_proc port, as Envoy sends it; the body's reply."""
    header_map = base_pb2.HeaderMap(
        headers=[
            base_pb2.HeaderValue(key=key, raw_value=value.encode())
            for key, value in {":method": "POST", ":path": "/v1/completions", **headers}.items()
        ]
    )
    messages = [
        ext_proc_pb2.ProcessingRequest(
            request_headers=ext_proc_pb2.HttpHeaders(headers=header_map, end_of_stream=False)
        ),
        ext_proc_pb2.ProcessingRequest(
            request_body=ext_proc_pb2.HttpBody(body=body, end_of_stream=True)
        ),
    ]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = ext_proc_grpc.ExternalProcessorStub(channel).Process(timeout=5)
        replies = []
        for message in messages:
            await call.write(message)
            replies.append(await call.read())
        await call.done_writing()
        call.cancel()
    assert replies[0].WhichOneof("response") == "request_headers"
    return replies[1]


def set_headers(reply: ext_proc_pb2.ProcessingResponse) -> dict[str, str]:
    assert reply.WhichOneof("response") == "request_body"
    common = reply.request_body.response
    assert common.clear_route_cache
    assert not common.HasField("body_mutation")
    options = common.header_mutation.set_headers
    # Overwrite, so a header the client sent itself cannot pick the route.
    assert {option.append_action for option in options} <= {OVERWRITE}
    return {option.header.key: option.header.raw_value.decode() for option in options}


def scrape(port: int) -> dict[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {family.name: family.type for family in text_string_to_metric_families(text)}


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def eventually(check: Callable[[], object], timeout_s: float = 10.0) -> None:
    """Poll an async-free condition until it holds; the adapter file is polled every second."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="overall"),
        pytest.param("envoy.service.ext_proc.v3.ExternalProcessor", id="ext-proc"),
        # Upstream answers for any service name.
        pytest.param("anything.else", id="any-name"),
    ],
)
async def test_health_answers_serving(service: BbrService, name: str) -> None:
    assert await health_check(service.server.health_port, name) == SERVING


async def test_metrics_endpoint_has_the_bbr_families(service: BbrService) -> None:
    await route(service.server.grpc_port, b'{"model": "sql-lora"}')
    kinds = await asyncio.to_thread(scrape, service.metrics_server.port)
    assert {
        "bbr_info": "gauge",
        "bbr_success": "counter",
        "bbr_body_field_not_found": "counter",
        "bbr_body_field_empty": "counter",
        "bbr_plugin_duration_seconds": "histogram",
    }.items() <= kinds.items()
    assert service.metrics.registry.get_sample_value("bbr_success_total") == 1


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param(b'{"model": "sql-lora"}', {MODEL: "sql-lora", BASE: LLAMA}, id="adapter"),
        pytest.param(
            b'{"model": "meta-llama/Llama-3.1-8B-Instruct"}', {MODEL: LLAMA, BASE: LLAMA}, id="base"
        ),
        pytest.param(b'{"model": "other"}', {MODEL: "other", BASE: ""}, id="unknown"),
    ],
)
async def test_ext_proc_sets_headers_from_the_adapter_file(
    service: BbrService, body: bytes, headers: dict[str, str]
) -> None:
    reply = await route(service.server.grpc_port, body, **{MODEL: "client-sent"})
    assert set_headers(reply) == headers


async def test_malformed_body_is_answered_with_400(service: BbrService) -> None:
    reply = await route(service.server.grpc_port, b"{not json")
    assert reply.WhichOneof("response") == "immediate_response"
    assert reply.immediate_response.status.code == 400
    assert reply.immediate_response.body.decode().startswith(
        "inference error: BadRequest - failed to parse request body:"
    )


async def test_base_model_header_follows_the_adapter_file(
    service: BbrService, adapters_file: Path
) -> None:
    port = service.server.grpc_port
    assert set_headers(await route(port, b'{"model": "sql-lora"}'))[BASE] == LLAMA
    new_file = "baseModels:\n  - baseModel: Qwen/Qwen3-0.6B\n    adapters: [sql-lora]\n"
    await asyncio.to_thread(adapters_file.write_text, new_file, encoding="utf-8")
    await eventually(lambda: service.adapters.base_model_of("sql-lora") == "Qwen/Qwen3-0.6B")
    headers = set_headers(await route(port, b'{"model": "sql-lora"}'))
    assert headers[BASE] == "Qwen/Qwen3-0.6B"
    # The old base model is gone from the file, so it is no longer known.
    headers = set_headers(await route(port, b'{"model": "chat-lora"}'))
    assert headers[BASE] == ""


async def test_stop_ends_health_and_frees_every_port(adapters_file: Path) -> None:
    bbr = BbrService(bbr_options(adapters_file))
    await bbr.start()
    ports = (bbr.server.grpc_port, bbr.server.health_port, bbr.metrics_server.port)
    try:
        assert await health_check(bbr.server.health_port) == SERVING
        assert not any(port_is_free(port) for port in ports)
    finally:
        await bbr.stop()
    # NOT_SERVING first, then the health server goes away.
    assert bbr.health.serving() is False
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await health_check(ports[1])
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert all(port_is_free(port) for port in ports)


def test_a_broken_adapter_file_fails_construction(tmp_path: Path) -> None:
    path = tmp_path / "adapters.yaml"
    path.write_text("baseModels:\n  - adapters: [x]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{path}:2: .*baseModel is missing"):
        BbrService(bbr_options(path))


def test_unknown_plugin_type_fails_construction() -> None:
    options = dataclasses.replace(bbr_options(), plugins=(PluginSpec("nope-header", "x"),))
    with pytest.raises(ValueError, match="unknown BBR plugin type 'nope-header'"):
        BbrService(options)


def metrics_status(port: int, token: str | None = None) -> int:
    """The status of a real `GET /metrics`, with `Authorization: Bearer token` if given."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/metrics", headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


async def test_metrics_need_a_permitted_token_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prometheus = "system:serviceaccount:monitoring:prometheus"
    async with FakeKubeApi() as api:
        api.tokens = {"prometheus-token": prometheus, "other-token": "someone"}
        api.allowed = {(prometheus, "get", "/metrics")}
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig(tmp_path / "kubeconfig")))
        options, _ = parse_args(
            [
                "--grpc-port=0",
                "--grpc-health-port=0",
                "--metrics-port=0",
                "--host=127.0.0.1",
                "--kubernetes=off",
                "--secure-serving=false",
                "--tracing=false",
            ]
        )
        assert options.metrics_endpoint_auth  # upstream's default
        bbr = BbrService(options)
        await bbr.start()
        try:
            port = bbr.metrics_server.port
            assert await asyncio.to_thread(metrics_status, port) == 401
            assert await asyncio.to_thread(metrics_status, port, "stolen") == 401
            assert await asyncio.to_thread(metrics_status, port, "other-token") == 403
            assert await asyncio.to_thread(metrics_status, port, "prometheus-token") == 200
        finally:
            await bbr.stop()


def test_metrics_auth_without_a_cluster_fails_construction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Serving the metrics unauthenticated instead would silently drop upstream's protection.
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    options = dataclasses.replace(bbr_options(), metrics_endpoint_auth=True)
    with pytest.raises(RuntimeError, match="pass --metrics-endpoint-auth=false to serve /metrics"):
        BbrService(options)
