"""The EPP's two response modes behind a real Envoy, with a simulated vLLM pod (`igw.sim`).

* compatible: upstream's filter config, response body FULL_DUPLEX_STREAMED: every body is read.
* lean: response body STREAMED, response trailers SKIP, request side still full duplex; the EPP
  declines bodies it does not need (`CONTINUE_AND_REPLACE` at response headers), at sample rate
  0.0 ("lean") or reading every body for metrics at 1.0 ("lean-sampled").

Each answer through the gateway is compared byte for byte with the same request sent straight to
the pod (the simulator is deterministic; only the completion id and the `created` timestamp
differ, and those are masked). Whether the EPP read a body shows in the response-size histogram,
which is recorded only at a response's end.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import pytest

from igw.common.testing import ExtProcFilter, OriginalDstCluster, gateway_bootstrap
from igw.common.testing.envoy_config import BodyMode, HeaderMode
from igw.common.testing.pytest_plugin import EnvoyFactory
from igw.epp.server import EppOptions, EppService
from igw.epp.testing.builders import endpoint
from igw.epp.testing.requestpath import StaticEndpoints
from igw.sim.server import SimPod
from igw.sim.testing import FakeEngine, serve_pod, wait_until

pytestmark = pytest.mark.envoy

TOKENS = 500
MODELS = {"model_name": "m", "target_model_name": "m"}
_VOLATILE = re.compile(rb'"id":"chatcmpl-[0-9a-f]+"|"created":\d+')


@dataclass(frozen=True)
class Mode:
    """One EPP filter configuration and what it must do with response bodies."""

    response_body_mode: BodyMode
    response_trailer_mode: HeaderMode
    sample_rate: float
    reads_bodies: bool


MODES = {
    "compatible": Mode("FULL_DUPLEX_STREAMED", "SEND", 0.0, reads_bodies=True),
    "lean": Mode("STREAMED", "SKIP", 0.0, reads_bodies=False),
    "lean-sampled": Mode("STREAMED", "SKIP", 1.0, reads_bodies=True),
}


@dataclass
class Gateway:
    url: str
    epp: EppService
    pod: SimPod
    mode: Mode
    session: aiohttp.ClientSession

    async def post(self, base: str, body: dict[str, object], **headers: str) -> bytes:
        url = base + "/v1/chat/completions"
        async with self.session.post(url, json=body, headers=headers) as response:
            data = await response.read()
            assert response.status == 200, data
            return data

    def metric(self, name: str, **labels: str) -> float:
        return self.epp.registry.get_sample_value(name, labels) or 0.0

    async def settled(self) -> None:
        """Waits until no request is in flight (the stream ends just after the client's answer)."""
        await wait_until(
            lambda: self.metric("inference_objective_running_requests", model_name="m") == 0
        )


@pytest.fixture(params=list(MODES))
async def gateway(
    request: pytest.FixtureRequest,
    envoy_factory: EnvoyFactory,
    free_port_factory: Callable[[], int],
) -> AsyncIterator[Gateway]:
    mode = MODES[request.param]
    engine = FakeEngine(model="m", token_interval_s=0.0005)
    async with serve_pod(engine, model="m", adapters={"t": "/adapters/t"}) as pod:
        pod_a = endpoint(
            "pod-a-rank-0", address="127.0.0.1", port=pod.port, updated_at=time.monotonic()
        )
        source = StaticEndpoints([pod_a])
        options = EppOptions(
            grpc_port=0, grpc_health_port=0, metrics_port=0, host="127.0.0.1",
            secure_serving=False, tracing=False, grace_s=0.5,
            response_sample_rate=mode.sample_rate,
        )  # fmt: skip
        epp = EppService(options, endpoint_source=source)
        await epp.start()
        epp_filter = ExtProcFilter(
            name="epp", port=epp.server.grpc_port, tls=False, response_header_mode="SEND",
            response_body_mode=mode.response_body_mode,
            response_trailer_mode=mode.response_trailer_mode,
        )  # fmt: skip
        config = gateway_bootstrap(
            listen_port=free_port_factory(), admin_port=free_port_factory(),
            ext_procs=[epp_filter], routes=[], clusters=[OriginalDstCluster("pool")],
            default_cluster="pool",
        )  # fmt: skip
        envoy = await envoy_factory.start_async(config)
        try:
            async with aiohttp.ClientSession() as session:
                yield Gateway(envoy.url, epp, pod, mode, session)
        finally:
            await envoy.stop_async()
            await epp.stop()


def comparable(body: bytes) -> bytes:
    """The body with its completion id and timestamp masked; every other byte kept."""
    return _VOLATILE.sub(b"_", body)


def chat(*, stream: bool, model: str = "m") -> dict[str, object]:
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": "tell me a long story"}],
        "max_tokens": TOKENS,
    }
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
async def test_response_arrives_complete_and_usage_as_the_mode_says(
    gateway: Gateway, stream: bool
) -> None:
    direct = await gateway.post(gateway.pod.url, chat(stream=stream))
    through = await gateway.post(gateway.url, chat(stream=stream))
    await gateway.settled()

    assert comparable(through) == comparable(direct)
    if stream:
        # The role chunk, one event per token, the usage chunk and [DONE].
        assert through.count(b"data: ") == TOKENS + 3
        assert through.endswith(b"data: [DONE]\n\n")
    usage = json.loads(direct.split(b"\n\n")[-3][6:] if stream else direct)["usage"]
    counted = 1 if gateway.mode.reads_bodies else 0
    assert gateway.metric("inference_objective_input_tokens_count", **MODELS) == counted
    assert gateway.metric("inference_objective_input_tokens_sum", **MODELS) == (
        usage["prompt_tokens"] * counted
    )
    assert gateway.metric("inference_objective_output_tokens_sum", **MODELS) == TOKENS * counted
    assert gateway.metric("inference_objective_response_sizes_count", **MODELS) == counted


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
async def test_rewritten_model_is_written_back_in_every_mode(
    gateway: Gateway, stream: bool
) -> None:
    direct = await gateway.post(gateway.pod.url, chat(stream=stream))
    through = await gateway.post(
        gateway.url, chat(stream=stream), **{"x-gateway-model-name-rewrite": "t"}
    )
    await gateway.settled()

    # The pod answered as "t" (its adapter); the client sees its own "m", byte for byte.
    assert b'"model":"t"' not in through
    assert comparable(through) == comparable(direct)
    rewritten = {"model_name": "m", "target_model_name": "t"}
    # A rewrite is always read, so its end is always seen, in every mode.
    assert gateway.metric("inference_objective_response_sizes_count", **rewritten) == 1
