"""The EPP behind a real Envoy, in upstream's compatible configuration (full duplex both ways).

Envoy's ORIGINAL_DST cluster sends each request where the EPP's `x-gateway-destination-endpoint`
points (`igw.epp.testing.gateway`). Model servers are echo backends (which report the headers and
body bytes that arrived) and a `GeneratingModelServer` for real SSE usage. The EPP runs in-process
over real gRPC.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from igw.common.testing import EchoBackend
from igw.common.testing.pytest_plugin import EnvoyFactory
from igw.epp.testing.gateway import open_gateway
from igw.epp.testing.generating_server import GeneratingModelServer
from igw.epp.testing.started_gateway import Gateway, endpoint_for
from igw.epp.testing.waiting import wait_until

pytestmark = pytest.mark.envoy

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}


@pytest.fixture
async def gateway(envoy_factory: EnvoyFactory) -> AsyncIterator[Gateway]:
    async with open_gateway(envoy_factory) as gateway:
        yield gateway


async def call(
    gateway: Gateway, method: str, path: str, data: bytes | None = None, **headers: str
) -> tuple[int, str]:
    async with gateway.session.request(
        method, gateway.url + path, data=data, headers=headers
    ) as response:
        return response.status, await response.text()


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
        gateway.route_to(endpoint_for(busy, waiting=5), endpoint_for(idle))
        status, text = await call(gateway, "POST", "/v1/chat/completions", body)
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
    gateway.route_to(endpoint_for(a), endpoint_for(b, waiting=9))
    steer = f"127.0.0.1:{b.port}"
    status, text = await call(
        gateway, "POST", "/v1/completions", json.dumps({"model": "m", "prompt": "p"}).encode(),
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
    gateway.route_to(endpoint_for(echoes[0]))
    got_status, text = await call(gateway, "POST", "/v1/chat/completions", body)
    assert got_status == status
    assert text.startswith(message)


async def test_body_split_across_chunks_arrives_whole(
    gateway: Gateway, echoes: tuple[EchoBackend, EchoBackend]
) -> None:
    gateway.route_to(endpoint_for(echoes[0]))
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
    gateway.route_to(*map(endpoint_for, echoes))
    served = set()
    for _ in range(12):
        status, text = await call(gateway, "GET", "/v1/models")
        assert status == 200
        served.add(json.loads(text)["served_by"])
    assert served == {"a", "b"}
    gateway.route_to()
    status, text = await call(gateway, "GET", "/v1/models")
    assert (status, text) == (500, "inference error: Internal - no pods available in datastore")
    status, text = await call(gateway, "POST", "/v1/completions", b'{"model":"m","prompt":"p"}')
    assert status == 503


async def test_streamed_usage_is_counted(gateway: Gateway) -> None:
    async with GeneratingModelServer("pod") as pod:
        gateway.route_to(endpoint_for(pod))
        body = {**CHAT, "stream": True, "max_tokens": 5, "stream_options": {"include_usage": True}}
        data = json.dumps(body).encode()
        status, text = await call(gateway, "POST", "/v1/chat/completions", data)
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
