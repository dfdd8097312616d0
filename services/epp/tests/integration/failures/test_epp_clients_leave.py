"""Clients that leave: while uploading, before the answer starts, and in the middle of a stream.

The gateway, and what every case checks once the client is gone: conftest.py.
"""

from __future__ import annotations

import asyncio

import pytest

from igw.epp.testing.gateway import ResponseMode
from igw.epp.testing.generating_server import GeneratingModelServer
from igw.epp.testing.model_servers import ScriptedModelServer
from igw.epp.testing.openai_requests import completion, model_rewrite, streamed_completion
from igw.epp.testing.started_gateway import SETTLE_S, Gateway, endpoint_for
from igw.epp.testing.waiting import wait_until

pytestmark = pytest.mark.envoy

MODEL = "m"


async def test_client_leaves_while_uploading(gateway: Gateway) -> None:
    pod = ScriptedModelServer("pod-0")
    async with pod:
        gateway.route_to(endpoint_for(pod))
        reader, writer = await gateway.start_upload(MODEL)
        # The EPP has the request open, waiting for the rest of the body, when the client goes.
        await gateway.wait_for_epp_streams(1)
        writer.close()
        await writer.wait_closed()
        assert await reader.read() == b""  # no answer for a request that never ended

        await gateway.settled()
    assert pod.received == []
    assert gateway.scheduled(MODEL) == 0
    assert gateway.server_errors(MODEL) == 0
    await gateway.still_serves(MODEL)


async def test_client_leaves_before_the_answer_starts(gateway: Gateway) -> None:
    async with GeneratingModelServer("pod-0") as pod:
        pod.gate.clear()  # the pod accepts the request and then generates nothing
        gateway.route_to(endpoint_for(pod))
        task = asyncio.create_task(gateway.post(completion(MODEL, max_tokens=5)))
        await wait_until(lambda: pod.running == 1)
        # Waiting for its first byte, the request is running and in flight, in both modes.
        assert (gateway.running(), await gateway.in_flight()) == (1, 1)
        task.cancel()  # the client gives up: aiohttp closes the connection
        with pytest.raises(asyncio.CancelledError):
            await task

        await gateway.settled()
        # The disconnect travelled through Envoy to the pod, which stopped the request.
        await wait_until(lambda: len(pod.cancelled) == 1)
        pod.gate.set()
    assert gateway.scheduled(MODEL) == 1
    assert gateway.server_errors(MODEL) == 0
    assert gateway.ended(MODEL) == 0
    await gateway.still_serves(MODEL)


async def test_client_leaves_mid_stream(gateway: Gateway, mode: ResponseMode, target: str) -> None:
    # 500 tokens: ten seconds unless cut short.
    async with GeneratingModelServer("pod-0", token_interval_s=0.02) as pod:
        gateway.route_to(endpoint_for(pod))
        async with gateway.session.post(
            gateway.url + "/v1/completions",
            json=streamed_completion(MODEL, "tell me a story", 500),
            headers=model_rewrite(MODEL, target),
        ) as response:
            assert response.status == 200
            assert response.content_type == "text/event-stream"
            for _ in range(3):
                event = await asyncio.wait_for(response.content.readuntil(b"\n\n"), SETTLE_S)
                assert event.startswith(b'data: {"id"')
                assert b'"model":"m"' in event
            # Mid-stream the request counts as running where the EPP reads the body; a skipped
            # body (lean) finished at the response headers (server.py's module docstring).
            reads = mode == "compatible" or target != MODEL
            assert (gateway.running(), await gateway.in_flight()) == (reads, reads)
            response.close()  # the client hangs up with most of the answer to come

        await gateway.settled()
        await wait_until(lambda: len(pod.cancelled) == 1)
    assert pod.generated_tokens < 500
    assert gateway.scheduled(MODEL, target) == 1
    assert gateway.server_errors(MODEL, target) == 0
    assert gateway.ended(MODEL, target) == 0
    await gateway.still_serves(MODEL)
