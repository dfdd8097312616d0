"""The EPP behind a real Envoy, in upstream's compatible configuration (full duplex both ways).

Envoy's ORIGINAL_DST cluster sends each request where the EPP's `x-gateway-destination-endpoint`
points. Model servers are echo backends (which report the headers and body bytes that arrived)
and a simulated vLLM pod (`igw.sim`) for real SSE usage. The EPP runs in-process over real gRPC.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from igw.common.testing import EchoBackend, ExtProcFilter, OriginalDstCluster, gateway_bootstrap
from igw.common.testing.pytest_plugin import EnvoyFactory
from igw.epp.server import EppOptions, EppService
from igw.epp.testing.builders import endpoint
from igw.epp.testing.requestpath import StaticEndpoints
from igw.sim.testing import FakeEngine, serve_pod, wait_until

pytestmark = pytest.mark.envoy

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}


@dataclass
class Gateway:
    url: str
    epp: EppService
    source: StaticEndpoints
    session: aiohttp.ClientSession

    def route_to(self, *ports_and_queues: tuple[int, int]) -> None:
        """Endpoints on 127.0.0.1 with these (port, waiting queue) metrics, fresh now."""
        self.source.states = tuple(
            endpoint(
                f"pod-{port}-rank-0",
                address="127.0.0.1",
                port=port,
                waiting=waiting,
                updated_at=time.monotonic(),
            )
            for port, waiting in ports_and_queues
        )

    async def call(
        self, method: str, path: str, data: bytes | None = None, **headers: str
    ) -> tuple[int, str]:
        async with self.session.request(
            method, self.url + path, data=data, headers=headers
        ) as response:
            return response.status, await response.text()

    def metric(self, name: str, **labels: str) -> float:
        return self.epp.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def gateway(
    envoy_factory: EnvoyFactory, free_port_factory: Callable[[], int]
) -> AsyncIterator[Gateway]:
    source = StaticEndpoints()
    options = EppOptions(
        grpc_port=0, grpc_health_port=0, metrics_port=0, host="127.0.0.1",
        secure_serving=False, tracing=False, grace_s=0.5,
    )  # fmt: skip
    epp = EppService(options, endpoint_source=source)
    await epp.start()
    epp_filter = ExtProcFilter(
        name="epp", port=epp.server.grpc_port, tls=False, response_header_mode="SEND",
        response_body_mode="FULL_DUPLEX_STREAMED", response_trailer_mode="SEND",
    )  # fmt: skip
    config = gateway_bootstrap(
        listen_port=free_port_factory(), admin_port=free_port_factory(), ext_procs=[epp_filter],
        routes=[], clusters=[OriginalDstCluster("pool")], default_cluster="pool",
    )  # fmt: skip
    envoy = await envoy_factory.start_async(config)
    try:
        async with aiohttp.ClientSession() as session:
            yield Gateway(envoy.url, epp, source, session)
    finally:
        await envoy.stop_async()
        await epp.stop()


@pytest.fixture
async def echoes() -> AsyncIterator[tuple[EchoBackend, EchoBackend]]:
    async with EchoBackend("a") as a, EchoBackend("b") as b:
        yield a, b


async def test_the_pick_lands_on_the_chosen_endpoint(
    gateway: Gateway, echoes: tuple[EchoBackend, EchoBackend]
) -> None:
    a, b = echoes
    for i, (busy, idle) in enumerate(((a, b), (b, a))):
        # A new prompt each time, so prefix affinity does not pull it to the last pod; an odd
        # layout, which must arrive byte-exact.
        chat = {"model": "m", "messages": [{"role": "user", "content": f"question {i}"}]}
        body = json.dumps(chat, indent=2).encode()
        gateway.route_to((busy.port, 5), (idle.port, 0))
        status, text = await gateway.call("POST", "/v1/chat/completions", body)
        assert status == 200, text
        echo = json.loads(text)
        assert echo["served_by"] == idle.name
        assert echo["headers"]["x-gateway-destination-endpoint"] == f"127.0.0.1:{idle.port}"
        assert echo["body_len"] == len(body)
    labels = {"model_name": "m", "target_model_name": "m", "priority": "0"}
    assert gateway.metric("inference_objective_request_total", **labels) == 2


async def test_clients_cannot_steer_and_control_headers_stay_home(
    gateway: Gateway, echoes: tuple[EchoBackend, EchoBackend]
) -> None:
    a, b = echoes
    gateway.route_to((a.port, 0), (b.port, 9))
    steer = f"127.0.0.1:{b.port}"
    status, text = await gateway.call(
        "POST", "/v1/completions", json.dumps({"model": "m", "prompt": "p"}).encode(),
        **{"x-gateway-destination-endpoint": steer,
           "x-gateway-destination-endpoint-subset": steer,
           "x-gateway-inference-objective": "anything",
           "x-gateway-inference-fairness-id": "tenant",
           "x-gateway-model-name-rewrite": "m"},
    )  # fmt: skip
    assert status == 200, text
    echo = json.loads(text)
    assert echo["served_by"] == "a"
    leaked = {k for k in echo["headers"] if k.startswith("x-gateway-inference")}
    assert not leaked
    assert "x-gateway-model-name-rewrite" not in echo["headers"]
    assert "x-gateway-destination-endpoint-subset" not in echo["headers"]
    assert echo["headers"]["x-gateway-destination-endpoint"] == f"127.0.0.1:{a.port}"
    assert echo["headers"]["x-request-id"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        pytest.param(b"{not json", 400,
                     "inference error: BadRequest - error unmarshaling request bodyMap: ",
                     id="invalid-json"),
        pytest.param(b'{"messages":[{"role":"user","content":"x"}]}', 400,
                     "inference error: BadRequest - model not found in request body",
                     id="missing-model"),
    ],
)  # fmt: skip
async def test_bad_requests(
    gateway: Gateway,
    echoes: tuple[EchoBackend, EchoBackend],
    body: bytes,
    status: int,
    message: str,
) -> None:
    gateway.route_to((echoes[0].port, 0))
    got_status, text = await gateway.call("POST", "/v1/chat/completions", body)
    assert got_status == status
    assert text.startswith(message)


async def test_body_split_across_chunks_arrives_whole(
    gateway: Gateway, echoes: tuple[EchoBackend, EchoBackend]
) -> None:
    gateway.route_to((echoes[0].port, 0))
    prompt = "x" * 300_000  # several 62,000-byte chunks both ways

    async def chunks() -> AsyncIterator[bytes]:
        data = json.dumps({"model": "m", "prompt": prompt}).encode()
        for start in range(0, len(data), 7000):
            yield data[start : start + 7000]

    async with gateway.session.post(gateway.url + "/v1/completions", data=chunks()) as response:
        echo = json.loads(await response.text())
    assert response.status == 200
    assert echo["body_len"] == len(json.dumps({"model": "m", "prompt": prompt}))


async def test_header_only_get_and_no_pods(
    gateway: Gateway, echoes: tuple[EchoBackend, EchoBackend]
) -> None:
    gateway.route_to((echoes[0].port, 0), (echoes[1].port, 0))
    served = set()
    for _ in range(12):
        status, text = await gateway.call("GET", "/v1/models")
        assert status == 200
        served.add(json.loads(text)["served_by"])
    assert served == {"a", "b"}
    gateway.route_to()
    status, text = await gateway.call("GET", "/v1/models")
    assert (status, text) == (500, "inference error: Internal - no pods available in datastore")
    status, text = await gateway.call("POST", "/v1/completions", b'{"model":"m","prompt":"p"}')
    assert status == 503


async def test_streamed_usage_is_counted(gateway: Gateway) -> None:
    async with serve_pod(FakeEngine(model="m"), model="m") as pod:
        gateway.route_to((pod.port, 0))
        body = {**CHAT, "stream": True, "max_tokens": 5, "stream_options": {"include_usage": True}}
        status, text = await gateway.call("POST", "/v1/chat/completions", json.dumps(body).encode())
    assert status == 200, text
    assert text.rstrip().endswith("data: [DONE]")
    usage: dict[str, Any] = next(
        json.loads(line[6:])["usage"] for line in text.splitlines() if '"usage"' in line
    )
    models = {"model_name": "m", "target_model_name": "m"}
    assert gateway.metric("inference_objective_input_tokens_count", **models) == 1
    assert (
        gateway.metric("inference_objective_input_tokens_sum", **models) == usage["prompt_tokens"]
    )
    assert gateway.metric("inference_objective_output_tokens_sum", **models) == 5
    # The ext_proc stream ends just after the client has the response.
    await wait_until(
        lambda: gateway.metric("inference_objective_running_requests", model_name="m") == 0
    )
