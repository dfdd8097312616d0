"""The EPP's response plugins behind a real Envoy, with simulated vLLM pods (`igw.sim`).

* `destination-endpoint-served-verifier`: the gateway reports the endpoint that served each
  response (`gateway_bootstrap(served_endpoint_metadata=True)`: the router's upstream address,
  moved into `envoy.lb/x-gateway-destination-endpoint-served` by a Lua filter, forwarded to the
  EPP with the response headers); the client sees it in `x-conformance-test-served-endpoint`.
* `request-attribute-reporter`: the EPP computes a cost from the pod's real usage and hands it to
  Envoy as `envoy.lb` dynamic metadata with the last body reply. A Lua filter in front of the
  EPP (first in the chain, so last on the response path) waits for the whole body and copies
  that metadata into the response header `x-request-cost`: the client sees what Envoy received.

Both EPP response modes: compatible (full duplex) and lean (STREAMED, sample rate 0, where the
reporter alone makes the EPP read the body).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from igw.common.testing import ExtProcFilter, LuaFilter, OriginalDstCluster, gateway_bootstrap
from igw.common.testing.envoy_config import SERVED_ENDPOINT_HEADER, BodyMode, HeaderMode
from igw.common.testing.pytest_plugin import EnvoyFactory
from igw.epp.server import EppOptions, EppService
from igw.epp.testing.builders import endpoint
from igw.epp.testing.requestpath import StaticEndpoints
from igw.sim.server import SimPod
from igw.sim.testing import FakeEngine, serve_pod, wait_until

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
MODES: dict[str, tuple[BodyMode, HeaderMode]] = {
    "compatible": ("FULL_DUPLEX_STREAMED", "SEND"),
    "lean": ("STREAMED", "SKIP"),
}


@dataclass
class Gateway:
    url: str
    epp: EppService
    source: StaticEndpoints
    pods: tuple[SimPod, SimPod]
    session: aiohttp.ClientSession

    def route_to(self, pod: SimPod) -> None:
        """The pool is this one pod (fresh metrics), so the EPP can only pick it."""
        self.source.states = (
            endpoint(f"pod-{pod.port}-rank-0", address="127.0.0.1", port=pod.port,
                     updated_at=time.monotonic()),
        )  # fmt: skip

    async def chat(self, **extra: Any) -> tuple[dict[str, str], bytes]:
        body = {"model": "m", "messages": [{"role": "user", "content": "count to ten"}],
                "max_tokens": 12, **extra}  # fmt: skip
        async with self.session.post(self.url + "/v1/chat/completions", json=body) as response:
            data = await response.read()
            assert response.status == 200, data
            return dict(response.headers), data

    async def settled(self) -> None:
        await wait_until(
            lambda: (
                self.epp.registry.get_sample_value(
                    "inference_objective_running_requests", {"model_name": "m"}
                )
                == 0
            )
        )


@pytest.fixture(params=list(MODES))
async def gateway(
    request: pytest.FixtureRequest,
    envoy_factory: EnvoyFactory,
    free_port_factory: Callable[[], int],
) -> AsyncIterator[Gateway]:
    body_mode, trailer_mode = MODES[request.param]
    engine_a, engine_b = FakeEngine(model="m"), FakeEngine(model="m")
    async with serve_pod(engine_a, model="m") as pod_a, serve_pod(engine_b, model="m") as pod_b:
        source = StaticEndpoints()
        options = EppOptions(
            grpc_port=0, grpc_health_port=0, metrics_port=0, host="127.0.0.1",
            secure_serving=False, tracing=False, grace_s=0.5, config_text=CONFIG,
            response_sample_rate=0.0,
        )  # fmt: skip
        epp = EppService(options, endpoint_source=source)
        await epp.start()
        epp_filter = ExtProcFilter(
            name="epp", port=epp.server.grpc_port, tls=False, response_header_mode="SEND",
            response_body_mode=body_mode, response_trailer_mode=trailer_mode,
            forwarding_namespaces=("envoy.lb",),
        )  # fmt: skip
        config = gateway_bootstrap(
            listen_port=free_port_factory(), admin_port=free_port_factory(),
            ext_procs=[LuaFilter("reveal-cost", REVEAL_COST_LUA), epp_filter], routes=[],
            clusters=[OriginalDstCluster("pool")], default_cluster="pool",
            served_endpoint_metadata=True,
        )  # fmt: skip
        envoy = await envoy_factory.start_async(config)
        try:
            async with aiohttp.ClientSession() as session:
                yield Gateway(envoy.url, epp, source, (pod_a, pod_b), session)
        finally:
            await envoy.stop_async()
            await epp.stop()


async def test_client_sees_the_endpoint_that_served_as_the_gateway_reported_it(
    gateway: Gateway,
) -> None:
    for pod in (*gateway.pods, gateway.pods[0]):
        gateway.route_to(pod)
        headers, _ = await gateway.chat()
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
    gateway: Gateway, stream: bool
) -> None:
    gateway.route_to(gateway.pods[1])
    extra: dict[str, Any] = (
        {"stream": True, "stream_options": {"include_usage": True}} if stream else {}
    )

    headers, body = await gateway.chat(**extra)

    usage = _usage(body, stream=stream)
    assert usage["completion_tokens"] == 12
    assert headers["x-request-cost"] == str(usage["prompt_tokens"] + 2 * 12)
    await gateway.settled()


async def test_no_usage_reported_means_no_cost(gateway: Gateway) -> None:
    gateway.route_to(gateway.pods[0])

    headers, body = await gateway.chat(stream=True)  # no include_usage: the pod reports none

    assert body.endswith(b"data: [DONE]\n\n")
    assert b'"usage"' not in body
    assert "x-request-cost" not in headers
    await gateway.settled()
