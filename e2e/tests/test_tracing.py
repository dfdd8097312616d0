"""One request through `make run`'s stack makes one trace: Envoy, BBR, EPP and simulator spans.

The gateway's processes inherit `OTEL_EXPORTER_OTLP_ENDPOINT`, pointed at an in-test receiver, as
Envoy's tracer is. Envoy starts the trace; the BBR and EPP continue it from the `traceparent` in
their ext_proc stream's metadata, and the simulator from the request's headers.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import pytest

from igw.common.testing.otlp import OtlpReceiver, OtlpSpanKind, ReceivedSpan
from igw.e2e import pool
from igw.e2e.gateway import GatewayPorts, LocalGateway

pytestmark = pytest.mark.envoy

ENVOY = "igw-gateway"
BBR = "gateway-api-inference-extension/bbr"
EPP = "gateway-api-inference-extension/epp"
SIM = "igw-sim"


def _processor_span(spans: Sequence[ReceivedSpan], service: str) -> ReceivedSpan | None:
    """`service`'s ext_proc span whose parent is one of Envoy's spans, if it arrived."""
    envoy = {s.span_id for s in spans if s.service_name == ENVOY}
    return next((s for s in spans if s.service_name == service and s.parent_span_id in envoy), None)


def _whole_trace(spans: Sequence[ReceivedSpan]) -> bool:
    bbr, epp = _processor_span(spans, BBR), _processor_span(spans, EPP)
    if bbr is None or epp is None or bbr.trace_id != epp.trace_id:
        return False
    return any(s.service_name == SIM and s.trace_id == bbr.trace_id for s in spans)


async def test_one_request_makes_one_trace_across_the_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with OtlpReceiver() as otlp:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
        gateway = LocalGateway(GatewayPorts.free(), tmp_path, otlp_endpoint=otlp.endpoint)
        await gateway.start()
        try:
            body = {"model": pool.ADAPTER, "prompt": "Trace me", "max_tokens": 4}
            async with (
                aiohttp.ClientSession() as session,
                session.post(f"{gateway.url}/v1/completions", json=body) as response,
            ):
                assert response.status == 200, await response.text()
            spans = await otlp.wait_for(_whole_trace, timeout=20)
        finally:
            await gateway.stop()
    _assert_one_trace(spans)
    _assert_nothing_left(gateway)


def _assert_one_trace(spans: Sequence[ReceivedSpan]) -> None:
    by_id = {s.span_id: s for s in spans}
    bbr, epp = _processor_span(spans, BBR), _processor_span(spans, EPP)
    assert bbr is not None
    assert epp is not None
    assert bbr.name == epp.name == "gateway.request"
    # Each processor's span hangs under the Envoy span of its own ext_proc call.
    assert by_id[bbr.parent_span_id].kind == OtlpSpanKind.CLIENT
    assert by_id[bbr.parent_span_id].attributes.get("upstream_cluster") == "ext_proc_bbr"
    assert by_id[epp.parent_span_id].attributes.get("upstream_cluster") == "ext_proc_epp"
    roots = [s for s in spans if not s.parent_span_id]
    assert [(s.service_name, s.name) for s in roots] == [(ENVOY, "ingress")]
    sim = [s for s in spans if s.service_name == SIM]
    assert [s.kind for s in sim] == [OtlpSpanKind.SERVER]
    assert sim[0].parent_span_id in by_id  # Envoy's router re-parents it on its ingress span
    assert sim[0].attributes["gen_ai.request.model"] == pool.ADAPTER
    # The data plane reported back the pod that served the response (GIE §1.6): the one picked.
    served = epp.attributes.get("igw.served_endpoint")
    assert served == epp.attributes.get("igw.destination")
    assert str(served).startswith(f"{pool.ADAPTER_POD_IP}:")
    services = {s.service_name for s in spans}
    assert services == {ENVOY, BBR, EPP, SIM}
    listing = "\n".join(s.describe() for s in spans)
    assert {s.trace_id for s in spans} == {bbr.trace_id}, listing


def _assert_nothing_left(gateway: LocalGateway) -> None:
    """After `stop()` no child runs and no port of the gateway still listens."""
    for child in gateway.children:
        assert child.process is not None
        assert child.process.poll() is not None, child.name
    p = gateway.ports
    for port in (p.listen, p.admin, p.epp_grpc, p.bbr_grpc, *p.sim_ports):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, port
