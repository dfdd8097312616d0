"""igw.sim.generation: validation as vLLM answers it, the engine's limits, streaming, cancellation.

Runs a pod over loopback HTTP in front of a `FakeEngine`, whose `gate` holds running requests
still so a test can fill the pod to a known state.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from igw.common.telemetry import configure_tracing
from igw.sim import tokenizer
from igw.sim.generation import resolve_max_tokens
from igw.sim.openai_shapes import ApiError
from igw.sim.server import SimPod
from igw.sim.testing import FakeEngine, serve_pod, wait_until

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "Hello there"}]}
COMPLETION = {"model": "fake-model", "prompt": "Once upon a time"}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine(max_num_seqs=2, max_waiting=1)


@pytest.fixture
async def pod(engine: FakeEngine) -> AsyncIterator[SimPod]:
    async with serve_pod(engine, max_model_len=64, default_max_tokens=8, port=0) as served:
        yield served


async def call(
    session: aiohttp.ClientSession,
    url: str,
    body: dict[str, Any] | bytes,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with session.post(url, data=data, headers=headers) as response:
        return response.status, json.loads(await response.read())


@dataclass(frozen=True)
class Sim:
    """A pod, its fake engine and a client session, for tests that need all three."""

    pod: SimPod
    engine: FakeEngine
    session: aiohttp.ClientSession


@pytest.fixture
def sim(pod: SimPod, engine: FakeEngine, session: aiohttp.ClientSession) -> Sim:
    return Sim(pod, engine, session)


def success_count(pod: SimPod, reason: str) -> float:
    families = text_string_to_metric_families(pod.metrics.render().decode())
    (family,) = [f for f in families if f.name == "vllm:request_success"]
    (sample,) = [s for s in family.samples if s.labels["finished_reason"] == reason]
    return sample.value


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        pytest.param("/v1/chat/completions", {"model": "fake-model"}, None, id="no-messages"),
        pytest.param("/v1/chat/completions", {"messages": []}, "messages", id="empty-messages"),
        pytest.param(
            "/v1/chat/completions", {"messages": "hi"}, "messages", id="messages-not-a-list"
        ),
        pytest.param(
            "/v1/chat/completions", {"messages": [{"content": "x"}]}, "messages", id="no-role"
        ),
        pytest.param(
            "/v1/chat/completions", {**CHAT, "max_tokens": "9"}, "max_tokens", id="max-tokens-str"
        ),
        pytest.param("/v1/chat/completions", {**CHAT, "max_tokens": 0}, "max_tokens", id="zero"),
        pytest.param(
            "/v1/chat/completions",
            {**CHAT, "max_completion_tokens": -1},
            "max_completion_tokens",
            id="negative-max-completion-tokens",
        ),
        pytest.param("/v1/chat/completions", {**CHAT, "n": 2}, "n", id="n-above-one"),
        pytest.param("/v1/chat/completions", {**CHAT, "stream": "yes"}, "stream", id="bad-stream"),
        pytest.param("/v1/completions", {"model": "fake-model"}, None, id="no-prompt"),
        pytest.param("/v1/completions", {"prompt": ""}, "prompt", id="empty-prompt"),
        pytest.param("/v1/completions", {"prompt": []}, "prompt", id="empty-prompt-list"),
        pytest.param("/v1/completions", {"prompt": ["a", "b"]}, "prompt", id="batched-prompts"),
        pytest.param("/v1/completions", {"prompt": 7}, "prompt", id="prompt-not-text"),
        pytest.param("/v1/completions", {"prompt": "x" * 400}, "input_tokens", id="too-long"),
        pytest.param(
            "/v1/completions", {"prompt": "hi", "max_tokens": 64}, "max_tokens", id="no-room"
        ),
        pytest.param("/v1/embeddings", {"input": ""}, "input", id="empty-embedding-input"),
        pytest.param("/v1/embeddings", {"input": "x" * 400}, "input_tokens", id="long-input"),
    ],
)
async def test_invalid_requests_answer_400(
    sim: Sim, path: str, body: dict[str, Any], param: str | None
) -> None:
    status, answer = await call(sim.session, f"{sim.pod.url}{path}", body)
    assert status == 400
    assert answer["error"]["type"] == "BadRequestError"
    assert answer["error"]["code"] == 400
    assert answer["error"]["param"] == param
    assert sim.engine.submitted == [], "a refused request never reaches the engine"


async def test_a_body_that_is_not_json_answers_400(
    pod: SimPod, session: aiohttp.ClientSession
) -> None:
    status, answer = await call(session, f"{pod.url}/v1/chat/completions", b'{"messages": [')
    assert status == 400
    assert "not valid JSON" in answer["error"]["message"]


@pytest.mark.parametrize(
    ("prompt_len", "requested", "default", "expected"),
    [
        pytest.param(10, None, 16, 16, id="default"),
        pytest.param(60, None, 16, 4, id="default-cut-to-the-room-left"),
        pytest.param(10, 54, 16, 54, id="exactly-fills-the-context"),
        pytest.param(10, 1, 16, 1, id="explicit"),
    ],
)
def test_max_tokens_resolution(
    prompt_len: int, requested: int | None, default: int, expected: int
) -> None:
    assert resolve_max_tokens(prompt_len, requested, default, max_model_len=64) == expected


@pytest.mark.parametrize(
    ("prompt_len", "requested", "param"),
    [
        pytest.param(64, None, "input_tokens", id="prompt-fills-the-context"),
        pytest.param(10, 55, "max_tokens", id="one-token-too-many"),
    ],
)
def test_max_tokens_that_do_not_fit_are_refused(
    prompt_len: int, requested: int | None, param: str
) -> None:
    with pytest.raises(ApiError) as info:
        resolve_max_tokens(prompt_len, requested, 16, max_model_len=64)
    assert (info.value.status, info.value.param) == (400, param)


async def test_chat_is_tokenized_by_the_template_and_defaults_its_max_tokens(
    pod: SimPod, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    messages: list[dict[str, object]] = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image_url"}]},
    ]
    status, answer = await call(session, f"{pod.url}/v1/chat/completions", {"messages": messages})
    assert status == 200
    (submitted,) = engine.submitted
    assert submitted.prompt_tokens == tokenizer.encode_chat(messages)
    assert submitted.max_tokens == 8, "the pod's default_max_tokens"
    assert answer["model"] == "fake-model", "no model: the base model answers"


async def test_a_token_id_prompt_reaches_the_engine_as_sent(
    pod: SimPod, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    status, answer = await call(session, f"{pod.url}/v1/completions", {"prompt": [5, 6, 7]})
    assert status == 200
    assert engine.submitted[0].prompt_tokens == (5, 6, 7)
    assert answer["usage"]["prompt_tokens"] == 3


async def test_a_known_adapter_is_served_and_an_unknown_model_is_404(
    pod: SimPod, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    engine.loras.append("sql-lora")
    status, answer = await call(
        session, f"{pod.url}/v1/chat/completions", {**CHAT, "model": "sql-lora"}
    )
    assert status == 200
    assert answer["model"] == "sql-lora"
    assert engine.submitted[0].lora == "sql-lora"
    status, answer = await call(
        session, f"{pod.url}/v1/chat/completions", {**CHAT, "model": "chat-lora"}
    )
    assert status == 404
    assert answer["error"] == {
        "message": "The model `chat-lora` does not exist.",
        "type": "NotFoundError",
        "param": "model",
        "code": 404,
    }


async def test_a_full_waiting_queue_answers_429(
    pod: SimPod, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    engine.gate.clear()  # hold every running request
    url = f"{pod.url}/v1/completions"
    held = [asyncio.create_task(call(session, url, COMPLETION)) for _ in range(3)]
    await wait_until(lambda: (len(engine.running), len(engine.waiting)) == (2, 1))
    status, answer = await call(session, url, COMPLETION)
    assert status == 429
    assert answer["error"]["type"] == "RateLimitError"
    engine.gate.set()
    assert [status for status, _ in await asyncio.gather(*held)] == [200, 200, 200]


@pytest.mark.parametrize(
    ("header", "status"),
    [
        pytest.param("429", 429, id="rate-limit"),
        pytest.param("503", 503, id="server-error"),
        pytest.param("401", 401, id="invalid-api-key"),
        pytest.param("500", 500, id="no-named-type"),
        pytest.param("200", 400, id="not-an-error-status"),
    ],
)
async def test_x_return_error_fails_the_request_with_that_status(
    pod: SimPod, engine: FakeEngine, session: aiohttp.ClientSession, header: str, status: int
) -> None:
    got, answer = await call(
        session, f"{pod.url}/v1/chat/completions", CHAT, headers={"x-return-error": header}
    )
    assert (got, answer["error"]["code"]) == (status, status)
    assert engine.submitted == []


async def stream_then_disconnect(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], events: int
) -> None:
    async with session.post(url, json=body) as response:
        for _ in range(events):
            await response.content.readuntil(b"\n\n")
        response.close()  # drop the connection mid-stream


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("/v1/chat/completions", {**CHAT, "stream": True}, id="chat"),
        pytest.param("/v1/completions", {**COMPLETION, "stream": True}, id="completion"),
    ],
)
async def test_a_client_leaving_mid_stream_cancels_its_engine_request(
    pod: SimPod,
    engine: FakeEngine,
    session: aiohttp.ClientSession,
    path: str,
    body: dict[str, Any],
) -> None:
    engine.token_interval_s = 0.01
    await stream_then_disconnect(session, f"{pod.url}{path}", {**body, "max_tokens": 50}, 3)
    await wait_until(lambda: len(engine.cancelled) == 1)
    assert engine.cancelled == [engine.submitted[0].request_id]
    assert engine.running == []
    assert success_count(pod, "abort") == 1


async def test_a_client_leaving_a_whole_answer_cancels_its_engine_request(
    pod: SimPod, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    engine.gate.clear()
    task = asyncio.create_task(call(session, f"{pod.url}/v1/completions", COMPLETION))
    await wait_until(lambda: len(engine.running) == 1)
    task.cancel()
    await wait_until(lambda: len(engine.cancelled) == 1)
    assert engine.running == []


@pytest.mark.parametrize(
    "stream", [pytest.param(False, id="whole-answer"), pytest.param(True, id="stream")]
)
async def test_an_engine_that_stops_mid_request_ends_the_answer(
    pod: SimPod, engine: FakeEngine, session: aiohttp.ClientSession, stream: bool
) -> None:
    engine.gate.clear()

    async def post() -> tuple[int, bytes]:
        body = {**COMPLETION, "stream": stream}
        async with session.post(f"{pod.url}/v1/completions", json=body) as response:
            return response.status, await response.read()

    answer = asyncio.create_task(post())
    await wait_until(lambda: len(engine.running) == 1)
    await engine.stop()
    status, raw = await answer
    if stream:
        assert status == 200
        assert b"[DONE]" not in raw, "a cut stream does not claim to be complete"
    else:
        assert status == 503
    assert success_count(pod, "abort") == 1


async def test_streams_continue_the_callers_trace(engine: FakeEngine) -> None:
    exporter = InMemorySpanExporter()
    provider = configure_tracing("igw-sim", exporter=exporter, install_global=False)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    async with (
        serve_pod(engine, tracer_provider=provider) as served,
        aiohttp.ClientSession() as client,
    ):
        status, _ = await call(client, f"{served.url}/v1/completions", COMPLETION, headers)
    assert status == 200
    (span,) = exporter.get_finished_spans()
    assert span.kind == trace.SpanKind.SERVER
    assert span.context is not None
    assert f"{span.context.trace_id:032x}" == trace_id
    assert span.attributes is not None
    assert span.attributes["gen_ai.request.max_tokens"] == 16
