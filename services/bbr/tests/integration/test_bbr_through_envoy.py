"""The BBR behind a real Envoy: what a client of the gateway sees.

Envoy routes on the headers the BBR sets (as an HTTPRoute header match does in a cluster) to
echo backends that report who served the request and the exact bytes that arrived. The BBR runs
in-process over real gRPC with TLS, in full-duplex mode (the chart's) and in buffered mode.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from igw.bbr.registry import DEFAULT_PLUGINS
from igw.bbr.server import BbrOptions, BbrService
from igw.common.testing import (
    EchoBackend,
    EnvoyProcess,
    ExtProcFilter,
    HeaderRoute,
    OtelTracing,
    StaticCluster,
    gateway_bootstrap,
)
from igw.common.testing.otlp import OtlpReceiver, OtlpSpanKind, ReceivedSpan
from igw.common.testing.pytest_plugin import EnvoyFactory

pytestmark = pytest.mark.envoy

ADAPTERS = """\
baseModels:
  - baseModel: base-a
    adapters: [lora-a1, lora-a2]
"""


@dataclass
class Gateway:
    url: str
    bbr: BbrService
    envoy: EnvoyProcess
    session: aiohttp.ClientSession

    async def post(
        self, body: bytes | io.BytesIO | AsyncIterator[bytes], **headers: str
    ) -> tuple[int, dict[str, Any] | str]:
        async with self.session.post(
            f"{self.url}/v1/chat/completions", data=body, headers=headers
        ) as response:
            text = await response.text()
            if response.content_type == "application/json":
                return response.status, json.loads(text)
            return response.status, text

    def metric(self, name: str, **labels: str) -> float:
        value = self.bbr.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


async def _start(
    tmp_path: Path,
    envoy_factory: EnvoyFactory,
    *,
    streaming: bool,
    otlp: OtlpReceiver | None = None,
    serve_models: bool = True,
    response_side: bool = False,
) -> AsyncIterator[Gateway]:
    """`response_side`: the BBR's filter also gets the responses, as the chart's lean mode."""
    adapters = tmp_path / "adapters.yaml"
    adapters.write_text(ADAPTERS)
    provider = None
    if otlp is not None:
        # Batched export runs on its own thread: a synchronous export from this event loop
        # would block the in-loop receiver it is sending to.
        provider = TracerProvider(resource=Resource.create({"service.name": "bbr"}))
        exporter = OTLPSpanExporter(endpoint=otlp.endpoint, insecure=True)
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=100))
    options = BbrOptions(
        # Port 0: the servers bind and report their ports, no race with other work on the box.
        grpc_port=0, grpc_health_port=0, metrics_port=0,
        host="127.0.0.1", streaming=streaming, plugins=DEFAULT_PLUGINS,
        adapters_file=adapters, kubernetes="off", tracing=otlp is not None,
        metrics_endpoint_auth=False, serve_models_endpoint=serve_models,
    )  # fmt: skip
    bbr = BbrService(options, tracer_provider=provider)
    backends = {name: EchoBackend(name) for name in ("a", "b", "base-a", "fallback")}
    for backend in backends.values():
        await backend.start()
    await bbr.start()
    config = gateway_bootstrap(
        ext_procs=[
            ExtProcFilter(
                name="bbr",
                port=bbr.server.grpc_port,
                request_body_mode="FULL_DUPLEX_STREAMED" if streaming else "BUFFERED",
                request_trailer_mode="SEND" if streaming else "SKIP",
                response_header_mode="SEND" if response_side else "SKIP",
                response_body_mode="STREAMED" if response_side else "NONE",
            )
        ],
        routes=[
            HeaderRoute("x-gateway-model-name", "a", "a"),
            HeaderRoute("x-gateway-model-name", "b", "b"),
            HeaderRoute("x-gateway-base-model-name", "base-a", "base-a"),
        ],
        clusters=[StaticCluster(n, (("127.0.0.1", b.port),)) for n, b in backends.items()],
        default_cluster="fallback",
        tracing=OtelTracing(port=otlp.port) if otlp is not None else None,
    )
    envoy = await envoy_factory.start_async(config)
    try:
        async with aiohttp.ClientSession() as session:
            yield Gateway(envoy.url, bbr, envoy, session)
    finally:
        await envoy.stop_async()
        await bbr.stop()
        for backend in backends.values():
            await backend.stop()


@pytest.fixture(params=[True, False], ids=["full-duplex", "buffered"])
async def gateway(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    envoy_factory: EnvoyFactory,
) -> AsyncIterator[Gateway]:
    async for gw in _start(tmp_path, envoy_factory, streaming=request.param):
        yield gw


@pytest.fixture
async def duplex(tmp_path: Path, envoy_factory: EnvoyFactory) -> AsyncIterator[Gateway]:
    async for gw in _start(tmp_path, envoy_factory, streaming=True):
        yield gw


def _chat(model: str | None = "a", filler: int = 0) -> bytes:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "hi" + "x" * filler}]}
    if model is not None:
        body["model"] = model
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("model", "backend"),
    [
        pytest.param("a", "a", id="model-a"),
        pytest.param("b", "b", id="model-b"),
        pytest.param("lora-a1", "base-a", id="adapter-by-base-model-route"),
        pytest.param("unknown", "fallback", id="unknown-model-default-route"),
    ],
)
async def test_requests_are_routed_by_the_model_in_the_body(
    gateway: Gateway, model: str, backend: str
) -> None:
    status, answer = await gateway.post(_chat(model))
    assert status == 200
    assert isinstance(answer, dict)
    assert answer["served_by"] == backend
    assert answer["headers"]["x-gateway-model-name"] == model


@pytest.mark.parametrize(
    ("model", "base"),
    [
        pytest.param("lora-a2", "base-a", id="adapter"),
        pytest.param("base-a", "base-a", id="base-model-itself"),
        pytest.param("unknown", "", id="unknown-is-empty"),
    ],
)
async def test_base_model_header(gateway: Gateway, model: str, base: str) -> None:
    _, answer = await gateway.post(_chat(model))
    assert isinstance(answer, dict)
    assert answer["headers"]["x-gateway-base-model-name"] == base


async def test_malformed_json_gets_400_with_a_message(gateway: Gateway) -> None:
    status, text = await gateway.post(b'{"model": "a", "messages": [')
    assert status == 400
    assert isinstance(text, str)
    assert text.startswith("inference error: BadRequest - failed to parse request body:")
    assert gateway.bbr.health.serving()


@pytest.mark.parametrize(
    ("model", "problem"),
    [
        pytest.param("a\r\nx-injected: 1", "control characters", id="crlf-injection"),
        pytest.param("a" * 9000, "at most 8192", id="too-long-for-a-header"),
    ],
)
async def test_model_that_cannot_be_a_header_gets_400(
    gateway: Gateway, model: str, problem: str
) -> None:
    status, text = await gateway.post(_chat(model))
    assert status == 400
    assert problem in str(text)


async def test_non_ascii_model_is_routed_as_utf8(duplex: Gateway) -> None:
    status, answer = await duplex.post(_chat("modèle-ü"))
    assert status == 200
    assert isinstance(answer, dict)
    assert answer["served_by"] == "fallback"
    assert answer["headers"]["x-gateway-model-name"] == "modèle-ü"


async def test_json_that_is_not_an_object_gets_400(gateway: Gateway) -> None:
    status, text = await gateway.post(b'["model", "a"]')
    assert status == 400
    assert "must be a JSON object" in str(text)


async def test_body_without_model_passes_through_untouched_and_is_counted(
    gateway: Gateway,
) -> None:
    body = _chat(model=None)
    before = gateway.metric("bbr_body_field_not_found_total", field="model")
    status, answer = await gateway.post(body)
    assert status == 200
    assert isinstance(answer, dict)
    assert answer["served_by"] == "fallback"
    assert "x-gateway-model-name" not in answer["headers"]
    assert answer["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert gateway.metric("bbr_body_field_not_found_total", field="model") == before + 1


async def test_client_supplied_model_header_is_replaced_by_the_body(gateway: Gateway) -> None:
    status, answer = await gateway.post(_chat("b"), **{"X-Gateway-Model-Name": "a"})
    assert status == 200
    assert isinstance(answer, dict)
    assert answer["served_by"] == "b"
    assert answer["headers"]["x-gateway-model-name"] == "b"


async def _get(gateway: Gateway, path: str) -> tuple[int, str, Any]:
    async with gateway.session.get(f"{gateway.url}{path}") as response:
        return response.status, response.content_type, await response.json()


async def test_get_models_is_answered_by_the_bbr(gateway: Gateway) -> None:
    status, content_type, answer = await _get(gateway, "/v1/models")
    assert (status, content_type, answer["object"]) == (200, "application/json", "list")
    assert [(m["id"], m["parent"]) for m in answer["data"]] == [
        ("base-a", None),
        ("lora-a1", "base-a"),
        ("lora-a2", "base-a"),
    ]
    status, _, answer = await _get(gateway, "/v1/models/lora-a2")
    assert (status, answer["id"], answer["object"]) == (200, "lora-a2", "model")
    status, _, answer = await _get(gateway, "/v1/models/gpt-4")
    assert (status, answer["error"]["code"]) == (404, "model_not_found")
    # A GET elsewhere still passes through to the routes.
    status, _, answer = await _get(gateway, "/v1/other")
    assert (status, answer["method"], answer["served_by"]) == (200, "GET", "fallback")


@pytest.mark.parametrize(
    ("serve_models", "served_by"),
    [
        # With the BBR's filter on the response side too (the chart's lean mode), the local
        # reply must reach the client whole and the next request must still be routed.
        pytest.param(True, None, id="chart-response-mode"),
        pytest.param(False, "fallback", id="endpoint-off-passes-through"),
    ],
)
async def test_get_models_with_other_settings(
    tmp_path: Path,
    envoy_factory: EnvoyFactory,
    serve_models: bool,
    served_by: str | None,
) -> None:
    async for gw in _start(
        tmp_path, envoy_factory, streaming=True,
        serve_models=serve_models, response_side=serve_models,
    ):  # fmt: skip
        status, _, answer = await _get(gw, "/v1/models")
        assert status == 200
        assert answer.get("served_by") == served_by
        assert len(answer.get("data", [])) == (3 if serve_models else 0)
        status, routed = await gw.post(_chat("lora-a1"))
        assert status == 200
        assert isinstance(routed, dict)
        assert routed["served_by"] == "base-a"


async def test_5_mib_body_arrives_byte_exact(duplex: Gateway) -> None:
    body = _chat("a", filler=5 * 1024 * 1024)
    status, answer = await duplex.post(io.BytesIO(body))
    assert status == 200
    assert isinstance(answer, dict)
    assert answer["served_by"] == "a"
    assert answer["body_len"] == len(body)
    assert answer["body_sha256"] == hashlib.sha256(body).hexdigest()


async def test_body_split_into_many_chunks_arrives_byte_exact(gateway: Gateway) -> None:
    body = _chat("b", filler=300_000)
    pieces = [body[i : i + 7_001] for i in range(0, len(body), 7_001)]

    async def slowly() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece
            await asyncio.sleep(0.001)

    status, answer = await gateway.post(slowly())
    assert status == 200
    assert isinstance(answer, dict)
    assert answer["served_by"] == "b"
    assert answer["body_sha256"] == hashlib.sha256(body).hexdigest()


async def _raw_http(port: int, request: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        return status, await reader.readexactly(length)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_request_with_trailers_does_not_hang(duplex: Gateway) -> None:
    body = _chat("a")
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: igw\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nTrailer: x-checksum\r\n\r\n"
        + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\nx-checksum: 42\r\n\r\n"
    )  # fmt: skip
    status, raw = await asyncio.wait_for(_raw_http(duplex.envoy.listen_ports[0], request), 10)
    assert status == 200
    answer = json.loads(raw)
    assert answer["served_by"] == "a"
    assert answer["body_sha256"] == hashlib.sha256(body).hexdigest()


async def test_bbr_spans_join_the_trace_envoy_started(
    tmp_path: Path, envoy_factory: EnvoyFactory
) -> None:
    def joined(spans: Sequence[ReceivedSpan]) -> bool:
        by_id = {s.span_id: s for s in spans}
        return any(
            s.service_name == "bbr"
            and s.name == "gateway.request"
            and s.parent_span_id in by_id
            and by_id[s.parent_span_id].service_name == "igw-gateway"
            for s in spans
        )

    async with OtlpReceiver() as otlp:
        async for gw in _start(tmp_path, envoy_factory, streaming=True, otlp=otlp):
            status, _ = await gw.post(_chat("a"))
            assert status == 200
            # Waited for while Envoy still runs: it exports its span after the response, and a
            # gateway stopped at once (a loaded machine) would never send it.
            spans = await otlp.wait_for(joined, timeout=15)
    bbr_span = next(s for s in spans if s.service_name == "bbr")
    assert bbr_span.kind == OtlpSpanKind.SERVER
    assert bbr_span.attributes["bbr.header.x-gateway-model-name"] == "a"
    assert {s.trace_id for s in spans if s.service_name in ("bbr", "igw-gateway")} == {
        bbr_span.trace_id
    }
