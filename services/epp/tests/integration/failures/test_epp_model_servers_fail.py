"""Model servers that fail: die mid-answer, stop mid-stream, cannot be reached, answer an error;
and a body the EPP itself cannot rewrite.

The gateway, and what every case checks once the failure is over: conftest.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from igw.epp.testing.generating_server import RETURN_ERROR_HEADER, GeneratingModelServer
from igw.epp.testing.model_servers import Answer, ScriptedModelServer
from igw.epp.testing.openai_requests import completion, model_rewrite, streamed_completion
from igw.epp.testing.started_gateway import SETTLE_S, Gateway, endpoint_for

pytestmark = pytest.mark.envoy

MODEL = "m"
ADAPTER = "t"


@dataclass(frozen=True)
class Address:
    """An endpoint with no model server behind it that answers."""

    name: str
    host: str
    port: int


def sse_events(count: int) -> tuple[bytes, ...]:
    """`count` OpenAI-style completion chunks, then `[DONE]`, one event per chunk."""
    chunk = {"object": "text_completion", "model": MODEL, "choices": [{"text": "x"}]}
    return (*(b"data: " + json.dumps(chunk).encode() + b"\n\n" for _ in range(count)),
            b"data: [DONE]\n\n")  # fmt: skip


async def read_into(got: list[bytes], response: aiohttp.ClientResponse) -> None:
    """Appends the body's data as it comes, until its end (or an error: what came stays)."""
    async with asyncio.timeout(SETTLE_S):
        async for data in response.content.iter_any():
            got.append(data)  # noqa: PERF401 - a comprehension would lose the data on error


@contextlib.asynccontextmanager
async def broken_pod(fault: str) -> AsyncIterator[Address]:
    """A pod that refuses connections (a port held bound, so nothing else can take it, but not
    listening), or accepts and hangs up unanswered."""
    if fault == "refuses":
        with socket.socket() as held:
            held.bind(("127.0.0.1", 0))
            yield Address("pod-gone", "127.0.0.1", held.getsockname()[1])
        return

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the request's headers arrived, then: nothing
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    async with server:
        yield Address("pod-hangs-up", "127.0.0.1", server.sockets[0].getsockname()[1])


@pytest.mark.parametrize("stream", [True, False], ids=["sse", "json"])
async def test_model_server_dies_mid_answer(gateway: Gateway, stream: bool, target: str) -> None:
    if stream:
        chunks, sent = sse_events(10), 4
        answer = Answer(chunks, content_type="text/event-stream", drop_after=sent)
    else:
        whole = json.dumps(completion(MODEL, "x" * 5000)).encode()
        chunks, sent = (whole[:2000], whole[2000:4000], whole[4000:]), 2
        answer = Answer(chunks, content_length=True, drop_after=sent)
    async with ScriptedModelServer("pod-0", answer=lambda _: answer) as pod:
        gateway.route_to(endpoint_for(pod))
        async with gateway.session.post(
            gateway.url + "/v1/completions",
            json=completion(MODEL, stream=stream),
            headers=model_rewrite(MODEL, target),
        ) as response:
            assert response.status == 200
            got: list[bytes] = []
            with pytest.raises(aiohttp.ClientPayloadError):
                await read_into(got, response)

        # The client sees a cut-off answer, never a made-up end.
        assert b"".join(chunks[:sent]).startswith(b"".join(got))
        assert [r.model for r in pod.received] == [target]
        await gateway.settled()
    assert gateway.scheduled(MODEL, target) == 1
    # A 200 whose body broke off is no error upstream either; its end was never seen.
    assert gateway.server_errors(MODEL, target) == 0
    assert gateway.ended(MODEL, target) == 0
    await gateway.still_serves(MODEL)


async def test_pod_stopped_mid_stream(gateway: Gateway) -> None:
    # A pod shut down mid-answer: its open stream is cut off. 500 tokens: ten seconds unless
    # cut short.
    async with GeneratingModelServer("pod-0", token_interval_s=0.02) as pod:
        gateway.route_to(endpoint_for(pod))
        async with gateway.session.post(
            gateway.url + "/v1/completions",
            json=streamed_completion(MODEL, "tell me a story", 500),
        ) as response:
            assert response.status == 200
            await asyncio.wait_for(response.content.readuntil(b"\n\n"), SETTLE_S)
            stopping = asyncio.create_task(pod.stop())
            got: list[bytes] = []
            with pytest.raises(aiohttp.ClientPayloadError):
                await read_into(got, response)
            await stopping

        assert b"[DONE]" not in b"".join(got)
        await gateway.settled()
    assert pod.generated_tokens < 500
    assert gateway.scheduled(MODEL) == 1
    assert gateway.server_errors(MODEL) == 0
    assert gateway.ended(MODEL) == 0
    await gateway.still_serves(MODEL)


@pytest.mark.parametrize("fault", ["refuses", "hangs-up"])
async def test_model_server_unreachable(gateway: Gateway, fault: str) -> None:
    async with broken_pod(fault) as pod:
        gateway.route_to(endpoint_for(pod))
        status, body = await gateway.post(completion(MODEL))

    assert status == 503
    assert body.startswith(b"upstream connect error or disconnect/reset before headers")
    # Envoy's own 503 passes the EPP's response path like a model server's answer.
    assert gateway.server_errors(MODEL) == 1
    assert gateway.scheduled(MODEL) == 1
    await gateway.still_serves(MODEL)


@pytest.mark.parametrize("status", [500, 429])
async def test_model_server_error_reaches_the_client_unchanged(
    gateway: Gateway, status: int
) -> None:
    async with GeneratingModelServer("pod-0") as pod:
        gateway.route_to(endpoint_for(pod))
        headers = {RETURN_ERROR_HEADER: str(status)}
        async with gateway.session.post(
            pod.url + "/v1/completions", json=completion(MODEL), headers=headers
        ) as direct:
            direct_body = await direct.read()
        assert direct.status == status

        got_status, body = await gateway.post(completion(MODEL), **headers)

    assert got_status == status
    assert body == direct_body
    assert json.loads(body)["error"]["code"] == status
    assert gateway.server_errors(MODEL) == 1
    assert gateway.scheduled(MODEL) == 1
    await gateway.still_serves(MODEL)


async def test_a_body_that_cannot_be_rewritten_is_refused_and_leaves_nothing(
    gateway: Gateway,
) -> None:
    # The model also appears nested, so the EPP cannot splice the rewritten name in and must
    # re-encode the body, which fails on a number beyond float range: found before the request
    # is scheduled, so no pod is picked and nothing is counted in flight.
    body = b'{"model": "m", "prompt": "p", "meta": {"model": "m"}, "n": 1e400}'
    async with ScriptedModelServer("pod-0") as pod:
        gateway.route_to(endpoint_for(pod))
        async with gateway.session.post(
            gateway.url + "/v1/completions", data=body, headers=model_rewrite(MODEL, ADAPTER)
        ) as response:
            text = await response.text()

        assert (response.status, text) == (
            500,
            "inference error: Internal - Error marshalling request body",
        )
        assert pod.received == []
    assert gateway.scheduled(MODEL, ADAPTER) == 0
    await gateway.still_serves(MODEL)
