"""Big and many: five-MiB prompts and answers byte-exact, and 200 clients at once, some leaving.

The gateway, and what every case checks afterwards: conftest.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json

import pytest

from igw.epp.testing.gateway import ResponseMode
from igw.epp.testing.generating_server import GeneratingModelServer
from igw.epp.testing.model_servers import Answer, Received, ScriptedModelServer
from igw.epp.testing.openai_requests import completion, model_rewrite, streamed_completion
from igw.epp.testing.started_gateway import Gateway, endpoint_for
from igw.epp.testing.waiting import wait_until

pytestmark = pytest.mark.envoy

MODEL = "m"
FIVE_MIB_TEXT = "".join(f"línea {i}: {'ß' * 40}\n" for i in range(70_000))
"""Over 5 MiB of UTF-8 text in many lines."""


async def test_a_five_mib_prompt_arrives_byte_exact(gateway: Gateway) -> None:
    async with ScriptedModelServer("pod-0") as pod:
        gateway.route_to(endpoint_for(pod))
        # An odd layout and non-ASCII text: the EPP must pass the bytes, not re-encode them.
        data = json.dumps(completion(MODEL, FIVE_MIB_TEXT), indent=1, ensure_ascii=False).encode()
        assert len(data) > 5 * 2**20
        async with asyncio.timeout(60):
            async with gateway.session.post(
                gateway.url + "/v1/completions", data=io.BytesIO(data)
            ) as response:
                answer = await response.read()

    assert response.status == 200, answer
    [received] = pod.received
    assert received.body == data
    sizes = gateway.metric(
        "inference_objective_request_sizes_sum", model_name=MODEL, target_model_name=MODEL
    )
    assert sizes == len(data)
    await gateway.still_serves(MODEL)


async def test_a_five_mib_answer_arrives_byte_exact(
    gateway: Gateway, mode: ResponseMode, target: str
) -> None:
    def answer(received: Received) -> Answer:
        # Spaced separators, as Python writes JSON: the back-rewrite must find `"model": "t"`.
        body = json.dumps(
            {"object": "text_completion", "model": received.model,
             "choices": [{"index": 0, "text": FIVE_MIB_TEXT, "finish_reason": "length"}],
             "usage": {"prompt_tokens": 3, "completion_tokens": 70_000}},
            ensure_ascii=False,
        ).encode()  # fmt: skip
        step = 2**16
        chunks = tuple(body[i : i + step] for i in range(0, len(body), step))
        return Answer(chunks, content_length=True, pause_s=0.0)

    async with ScriptedModelServer("pod-0", answer=answer) as pod:
        gateway.route_to(endpoint_for(pod))
        async with asyncio.timeout(60):
            status, got = await gateway.post(completion(MODEL), **model_rewrite(MODEL, target))
        sent = b"".join(answer(pod.received[0]).chunks)

    assert status == 200
    assert len(got) > 5 * 2**20
    # Byte for byte what the pod sent, the model name written back to the client's.
    assert got == sent.replace(f'"model": "{target}"'.encode(), b'"model": "m"')
    reads = mode == "compatible" or target != MODEL
    assert gateway.ended(MODEL, target) == reads
    output = {"model_name": MODEL, "target_model_name": target}
    assert gateway.metric("inference_objective_output_tokens_sum", **output) == 70_000 * reads
    await gateway.still_serves(MODEL)


async def test_many_clients_at_once_some_leaving(gateway: Gateway) -> None:
    async with contextlib.AsyncExitStack() as stack:
        pods = [
            await stack.enter_async_context(
                GeneratingModelServer(f"pod-{i}", token_interval_s=0.005)
            )
            for i in range(3)
        ]
        gateway.route_to(*map(endpoint_for, pods))

        async def whole(i: int) -> None:
            status, body = await gateway.post(completion(MODEL, f"question {i}", max_tokens=8))
            assert status == 200, body
            assert json.loads(body)["usage"]["completion_tokens"] == 8

        async def stream(i: int) -> None:
            status, body = await gateway.post(streamed_completion(MODEL, f"question {i}", 8))
            assert status == 200, body
            assert body.endswith(b"data: [DONE]\n\n")
            assert body.count(b"data: ") == 8 + 1

        async def leave_mid_stream(i: int) -> None:
            async with gateway.session.post(
                gateway.url + "/v1/completions",
                json=streamed_completion(MODEL, f"question {i}", 1000),
            ) as response:
                assert response.status == 200
                await response.content.readuntil(b"\n\n")
                response.close()

        async def leave_uploading(_: int) -> None:
            writer = (await gateway.start_upload(MODEL))[1]
            await asyncio.sleep(0.05)
            writer.close()
            await writer.wait_closed()

        clients = (whole, stream, leave_mid_stream, stream, leave_uploading)
        async with asyncio.timeout(180):  # generous: nothing may hang
            await asyncio.gather(*(clients[i % 5](i) for i in range(200)))

        await gateway.settled()
        await wait_until(lambda: all(not pod.running for pod in pods))
    # 40 of each kind; the uploads that never ended were never scheduled.
    assert gateway.scheduled(MODEL) == 160
    assert sum(len(pod.received) for pod in pods) == 160
    assert all(pod.received for pod in pods)  # the load was spread over the pool
    assert sum(len(pod.cancelled) for pod in pods) == 40
    assert gateway.server_errors(MODEL) == 0
    await gateway.still_serves(MODEL)
