"""The EPP's two response modes behind a real Envoy, with a `GeneratingModelServer` pod.

* compatible: upstream's filter config, response body FULL_DUPLEX_STREAMED: every body is read.
* lean: response body STREAMED, response trailers SKIP, request side still full duplex; the EPP
  declines bodies it does not need (`CONTINUE_AND_REPLACE` at response headers), at sample rate
  0.0 ("lean") or reading every body for metrics at 1.0 ("lean-sampled").

Each answer through the gateway is compared byte for byte with the same request sent straight to
the pod (its answers are deterministic; only the completion id and the `created` timestamp
differ, and those are masked). Whether the EPP read a body shows in the response-size histogram,
which is recorded only at a response's end.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from igw.common.testing.pytest_plugin import EnvoyFactory
from igw.epp.requestpath.headers import MODEL_REWRITE
from igw.epp.server import EppOptions
from igw.epp.testing.gateway import GatewaySettings, ResponseMode, open_gateway
from igw.epp.testing.generating_server import GeneratingModelServer
from igw.epp.testing.started_gateway import Gateway, endpoint_for

pytestmark = pytest.mark.envoy

TOKENS = 500
MODELS = {"model_name": "m", "target_model_name": "m"}
_VOLATILE = re.compile(rb'"id":"chatcmpl-[0-9a-f]+"|"created":\d+')


@dataclass(frozen=True)
class Mode:
    """One EPP filter configuration and what it must do with response bodies."""

    response_mode: ResponseMode
    sample_rate: float
    reads_bodies: bool


MODES = {
    "compatible": Mode("compatible", 0.0, reads_bodies=True),
    "lean": Mode("lean", 0.0, reads_bodies=False),
    "lean-sampled": Mode("lean", 1.0, reads_bodies=True),
}


@pytest.fixture(params=list(MODES))
def mode(request: pytest.FixtureRequest) -> Mode:
    return MODES[request.param]


@pytest.fixture
async def pod() -> AsyncIterator[GeneratingModelServer]:
    async with GeneratingModelServer("pod-a", token_interval_s=0.0005) as pod:
        yield pod


@pytest.fixture
async def gateway(
    mode: Mode,
    pod: GeneratingModelServer,
    envoy_factory: EnvoyFactory,
) -> AsyncIterator[Gateway]:
    settings = GatewaySettings(
        epp=EppOptions(response_sample_rate=mode.sample_rate), response_mode=mode.response_mode
    )
    async with open_gateway(envoy_factory, settings) as gateway:
        gateway.route_to(endpoint_for(pod))
        yield gateway


async def answer(gateway: Gateway, base: str, body: dict[str, object], **headers: str) -> bytes:
    """The whole answer to a chat sent to `base` (the gateway, or the pod directly)."""
    url = base + "/v1/chat/completions"
    async with gateway.session.post(url, json=body, headers=headers) as response:
        data = await response.read()
        assert response.status == 200, data
        return data


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
    gateway: Gateway, pod: GeneratingModelServer, mode: Mode, stream: bool
) -> None:
    direct = await answer(gateway, pod.url, chat(stream=stream))
    through = await answer(gateway, gateway.url, chat(stream=stream))
    await gateway.settled()

    assert comparable(through) == comparable(direct)
    if stream:
        # The role chunk, one event per token, the usage chunk and [DONE].
        assert through.count(b"data: ") == TOKENS + 3
        assert through.endswith(b"data: [DONE]\n\n")
    usage = json.loads(direct.split(b"\n\n")[-3][6:] if stream else direct)["usage"]
    counted = 1 if mode.reads_bodies else 0
    assert gateway.metric("inference_objective_input_tokens_count", **MODELS) == counted
    assert gateway.metric("inference_objective_input_tokens_sum", **MODELS) == (
        usage["prompt_tokens"] * counted
    )
    assert gateway.metric("inference_objective_output_tokens_sum", **MODELS) == TOKENS * counted
    assert gateway.metric("inference_objective_response_sizes_count", **MODELS) == counted


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
async def test_rewritten_model_is_written_back_in_every_mode(
    gateway: Gateway, pod: GeneratingModelServer, stream: bool
) -> None:
    direct = await answer(gateway, pod.url, chat(stream=stream))
    through = await answer(gateway, gateway.url, chat(stream=stream), **{MODEL_REWRITE: "t"})
    await gateway.settled()

    # The pod answered as "t", the model it was asked for; the client sees its own "m", byte for
    # byte.
    assert b'"model":"t"' not in through
    assert comparable(through) == comparable(direct)
    rewritten = {"model_name": "m", "target_model_name": "t"}
    # A rewrite is always read, so its end is always seen, in every mode.
    assert gateway.metric("inference_objective_response_sizes_count", **rewritten) == 1
