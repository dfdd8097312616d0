"""The header model rewrite, and the response path that writes the client's model back into a
buffered answer, however the model server splits it (the gateway and the pods: conftest.py)."""

from __future__ import annotations

import json

import pytest

from igw.epp.requestpath.headers import MODEL_REWRITE
from igw.epp.testing.gateway import RESPONSE_MODES, GatewaySettings, ResponseMode, StartGateway
from igw.epp.testing.model_servers import Answer, ScriptedModelServer
from igw.epp.testing.openai_requests import completion
from igw.epp.testing.started_gateway import endpoint_for

pytestmark = pytest.mark.envoy

INCOMING, TARGET = "sql-lora-sheddable", "sql-lora-1fdg3"
_ANSWER = '{{"max_tokens":100,"model":"{model}","prompt":"test6","temperature":0}}'
AS_TARGET = _ANSWER.format(model=TARGET).encode()
AS_INCOMING = _ANSWER.format(model=INCOMING).encode()
_SPLIT = AS_TARGET.index(b"sql-lo") + len(b"sql-lo")  # inside the model name
# 300 KB naming the model at both ends, answered in 10 KB pieces: the rewritten body goes back to
# Envoy in several 62,000-byte chunks.
_LONG = '{{"model":"{model}","choices":[{{"text":"{text}"}}],"echo":{{"model":"{model}"}}}}'
LONG_TARGET = _LONG.format(model=TARGET, text="x" * 300_000).encode()
LONG_INCOMING = _LONG.format(model=INCOMING, text="x" * 300_000).encode()
LONG_CHUNKS = tuple(LONG_TARGET[i : i + 10_000] for i in range(0, len(LONG_TARGET), 10_000))


async def test_header_model_rewrite(
    start_gateway: StartGateway, pods: tuple[ScriptedModelServer, ...]
) -> None:
    gateway = await start_gateway(GatewaySettings())
    gateway.route_to(endpoint_for(pods[0]))
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    status, answer = await gateway.post(
        json.dumps(chat).encode(),
        "/v1/chat/completions",
        **{MODEL_REWRITE: "adapter-with-a-long-name"},
    )
    await gateway.settled()

    assert status == 200, answer
    [received] = pods[0].received
    # The model server is asked for the rewritten model, the rest of the body unchanged ...
    assert json.loads(received.body) == {**chat, "model": "adapter-with-a-long-name"}
    assert MODEL_REWRITE not in received.headers
    # ... and the client sees its own model name back.
    assert json.loads(answer)["model"] == "m"
    assert b"adapter-with-a-long-name" not in answer
    models = {"model_name": "m", "target_model_name": "adapter-with-a-long-name"}
    assert gateway.metric("inference_objective_request_total", **models, priority="0") == 1
    assert gateway.metric("inference_objective_input_tokens_sum", **models) == 3
    assert gateway.metric("inference_objective_response_sizes_count", **models) == 1


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(
            Answer(chunks=(AS_TARGET[:_SPLIT], AS_TARGET[_SPLIT:])), AS_INCOMING,
            id="multi-chunk-json",
        ),
        pytest.param(
            Answer(chunks=(AS_TARGET[:_SPLIT], AS_TARGET[_SPLIT:]), content_length=True),
            AS_INCOMING, id="multi-chunk-json-with-content-length",
        ),
        pytest.param(
            Answer(chunks=LONG_CHUNKS, pause_s=0.001, content_length=True), LONG_INCOMING,
            id="large-json-in-many-chunks",
        ),
        pytest.param(
            Answer(chunks=(b"no healthy upstream",)), b"no healthy upstream", id="invalid-json"
        ),
        pytest.param(
            Answer(chunks=(AS_TARGET, b""), pause_s=0.2), AS_INCOMING, id="json-then-empty-eos"
        ),
        pytest.param(Answer(chunks=()), b"", id="empty-chunked"),
        pytest.param(Answer(chunks=(), content_length=True), b"", id="empty-content-length"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("mode", list(RESPONSE_MODES))
async def test_buffered_response_gets_the_model_written_back(
    start_gateway: StartGateway,
    pods: tuple[ScriptedModelServer, ...],
    answer: Answer,
    expected: bytes,
    mode: ResponseMode,
) -> None:
    gateway = await start_gateway(GatewaySettings(response_mode=mode))
    pods[0].answer = lambda _: answer
    gateway.route_to(endpoint_for(pods[0]))
    body = completion(INCOMING, "test6", max_tokens=100)
    status, got = await gateway.post(body, **{MODEL_REWRITE: TARGET})
    await gateway.settled()

    assert status == 200
    assert got == expected
    [received] = pods[0].received
    assert received.model == TARGET
    # The response's end was seen: it is counted once, with both model labels.
    models = {"model_name": INCOMING, "target_model_name": TARGET}
    assert gateway.metric("inference_objective_response_sizes_count", **models) == 1
