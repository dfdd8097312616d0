"""The EPP's response plugins behind a real Envoy, with `GeneratingModelServer` pods.

* `destination-endpoint-served-verifier`: the gateway reports the endpoint that served each
  response (`gateway_bootstrap(served_endpoint_metadata=True)`: the router's upstream address,
  moved into `envoy.lb/x-gateway-destination-endpoint-served` by a Lua filter, forwarded to the
  EPP with the response headers); the client sees it in `x-conformance-test-served-endpoint`.
* `request-latency-reporter`: the TTFT, TPOT and SLO violations of real streamed answers reach
  the EPP's metrics.
* `request-attribute-reporter`: the EPP computes a cost from the pod's real usage and hands it to
  Envoy as `envoy.lb` dynamic metadata with the last body reply. A Lua filter in front of the
  EPP (first in the chain, so last on the response path) waits for the whole body and copies
  that metadata into the response header `x-request-cost`: the client sees what Envoy received.

Both EPP response modes: compatible (full duplex) and lean (STREAMED, sample rate 0, where the
reporter alone makes the EPP read the body).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from igw.common.testing import LuaFilter
from igw.common.testing.envoy_config import SERVED_ENDPOINT_HEADER
from igw.common.testing.pytest_plugin import EnvoyFactory
from igw.epp.server import EppOptions
from igw.epp.testing.gateway import RESPONSE_MODES, GatewaySettings, ResponseMode, open_gateway
from igw.epp.testing.generating_server import GeneratingModelServer
from igw.epp.testing.started_gateway import Gateway, endpoint_for

pytestmark = pytest.mark.envoy

COST_KEY = "x-gateway-inference-request-cost"
CONFIG = f"""\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: destination-endpoint-served-verifier
- name: cost
  type: request-attribute-reporter
  parameters:
    attributes:
    - key: {{name: {COST_KEY}}}
      expression: usage.prompt_tokens + usage.completion_tokens * 2.0
- type: request-latency-reporter
"""
REVEAL_COST_LUA = f"""
function envoy_on_response(handle)
  handle:body()  -- the whole response: the EPP has answered its last body chunk
  local lb = handle:streamInfo():dynamicMetadata():get("envoy.lb")
  if lb ~= nil and lb["{COST_KEY}"] ~= nil then
    handle:headers():replace("x-request-cost", tostring(lb["{COST_KEY}"]))
  end
end
"""


@pytest.fixture(params=list(RESPONSE_MODES))
def mode(request: pytest.FixtureRequest) -> ResponseMode:
    mode: ResponseMode = request.param
    return mode


@pytest.fixture
async def pods() -> AsyncIterator[tuple[GeneratingModelServer, GeneratingModelServer]]:
    async with GeneratingModelServer("pod-a") as a, GeneratingModelServer("pod-b") as b:
        yield a, b


@pytest.fixture
async def gateway(mode: ResponseMode, envoy_factory: EnvoyFactory) -> AsyncIterator[Gateway]:
    settings = GatewaySettings(
        epp=EppOptions(config_text=CONFIG, response_sample_rate=0.0),
        response_mode=mode,
        lua_filters=(LuaFilter("reveal-cost", REVEAL_COST_LUA),),
        served_endpoint_metadata=True,
    )
    async with open_gateway(envoy_factory, settings) as gateway:
        yield gateway


async def chat(gateway: Gateway, **extra: Any) -> tuple[dict[str, str], bytes]:
    body = {"model": "m", "messages": [{"role": "user", "content": "count to ten"}],
            "max_tokens": 12, **extra}  # fmt: skip
    async with gateway.session.post(gateway.url + "/v1/chat/completions", json=body) as response:
        data = await response.read()
        assert response.status == 200, data
        return dict(response.headers), data


async def test_client_sees_the_endpoint_that_served_as_the_gateway_reported_it(
    gateway: Gateway, pods: tuple[GeneratingModelServer, GeneratingModelServer]
) -> None:
    for pod in (*pods, pods[0]):
        gateway.route_to(endpoint_for(pod))
        headers, _ = await chat(gateway)
        assert headers["x-inference-port"] == str(pod.port)
        assert headers["x-conformance-test-served-endpoint"] == f"127.0.0.1:{pod.port}"
        # The gateway's internal stamp never reaches the client.
        assert SERVED_ENDPOINT_HEADER not in {name.lower() for name in headers}
    await gateway.settled()


def _usage(body: bytes, *, stream: bool) -> dict[str, int]:
    if not stream:
        usage: dict[str, int] = json.loads(body)["usage"]
        return usage
    events = [line[6:] for line in body.split(b"\n") if line.startswith(b"data: {")]
    return next(json.loads(e)["usage"] for e in events if b'"usage"' in e)


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
async def test_reported_cost_reaches_envoy_from_the_pods_real_usage(
    gateway: Gateway, pods: tuple[GeneratingModelServer, GeneratingModelServer], stream: bool
) -> None:
    gateway.route_to(endpoint_for(pods[1]))
    extra: dict[str, Any] = (
        {"stream": True, "stream_options": {"include_usage": True}} if stream else {}
    )

    headers, body = await chat(gateway, **extra)

    usage = _usage(body, stream=stream)
    assert usage["completion_tokens"] == 12
    assert headers["x-request-cost"] == str(usage["prompt_tokens"] + 2 * 12)
    await gateway.settled()


async def test_no_usage_reported_means_no_cost(
    gateway: Gateway, pods: tuple[GeneratingModelServer, GeneratingModelServer]
) -> None:
    gateway.route_to(endpoint_for(pods[0]))

    headers, body = await chat(gateway, stream=True)  # no include_usage: the pod reports none

    assert body.endswith(b"data: [DONE]\n\n")
    assert b'"usage"' not in body
    assert "x-request-cost" not in headers
    await gateway.settled()


async def test_slo_violations_of_a_streamed_answer_are_counted(
    gateway: Gateway, pods: tuple[GeneratingModelServer, GeneratingModelServer]
) -> None:
    gateway.route_to(endpoint_for(pods[0]))
    body = {"model": "m", "messages": [{"role": "user", "content": "count"}], "max_tokens": 12,
            "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip
    slos = {"x-slo-ttft-ms": "0", "x-slo-tpot-ms": "60000"}  # no first token comes in 0 ms
    url = gateway.url + "/v1/chat/completions"
    async with gateway.session.post(url, json=body, headers=slos) as response:
        assert response.status == 200
        await response.read()
    await gateway.settled()

    labels = {"model_name": "m", "target_model_name": "m"}
    assert gateway.metric("inference_objective_request_ttft_seconds_count", **labels) == 1
    assert gateway.metric("inference_objective_request_tpot_seconds_count", **labels) == 1
    violations = "inference_objective_request_slo_violation_total"
    assert gateway.metric(violations, **labels, type="ttft") == 1
    assert gateway.metric(violations, **labels, type="tpot") == 0
