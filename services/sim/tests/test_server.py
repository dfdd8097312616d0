"""igw.sim.server: routes, identity headers, health and startup delay, models, adapters, stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from igw.sim.server import SimPod
from igw.sim.testing import FakeEngine, serve_pod

CHAT = {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 2}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
async def pod(engine: FakeEngine) -> AsyncIterator[SimPod]:
    adapters = {"sql-lora": "/adapters/sql"}
    async with serve_pod(engine, pod_name="pod-7", rank=3, adapters=adapters) as served:
        yield served


@dataclass(frozen=True)
class Client:
    pod: SimPod
    session: aiohttp.ClientSession


@pytest.fixture
def client(pod: SimPod, session: aiohttp.ClientSession) -> Client:
    return Client(pod, session)


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        pytest.param("POST", "/v1/chat/completions", CHAT, 200, id="chat"),
        pytest.param("POST", "/v1/chat/completions", {**CHAT, "stream": True}, 200, id="stream"),
        pytest.param("POST", "/v1/completions", {"prompt": ""}, 400, id="error"),
        pytest.param("POST", "/v1/embeddings", {"input": "x"}, 200, id="embeddings"),
        pytest.param("GET", "/v1/models", None, 200, id="models"),
        pytest.param("GET", "/health", None, 200, id="health"),
        pytest.param("GET", "/metrics", None, 200, id="metrics"),
        pytest.param("GET", "/nowhere", None, 404, id="unknown-path"),
    ],
)
async def test_every_answer_names_the_pod_port_and_rank(
    client: Client, method: str, path: str, body: dict[str, Any] | None, status: int
) -> None:
    pod = client.pod
    async with client.session.request(method, f"{pod.url}{path}", json=body) as response:
        await response.read()
        assert response.status == status
        assert response.headers["x-inference-pod"] == "pod-7"
        assert response.headers["x-inference-port"] == str(pod.port)
        assert response.headers["x-inference-rank"] == "3"


async def test_an_unknown_path_is_an_openai_404(
    pod: SimPod, session: aiohttp.ClientSession
) -> None:
    async with session.get(f"{pod.url}/v1/nowhere") as response:
        assert response.status == 404
        assert (await response.json())["error"]["type"] == "NotFoundError"


async def test_health_and_requests_answer_503_until_the_startup_delay_has_passed(
    engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with serve_pod(engine, startup_delay_s=0.3) as pod:
        async with session.get(f"{pod.url}/health") as response:
            assert response.status == 503
        async with session.post(f"{pod.url}/v1/chat/completions", json=CHAT) as response:
            assert response.status == 503
            assert (await response.json())["error"]["code"] == 503
        async with session.get(f"{pod.url}/metrics") as response:
            assert response.status == 200, "metrics are served while starting"
        await asyncio.sleep(0.35)
        async with session.get(f"{pod.url}/health") as response:
            assert response.status == 200
        async with session.post(f"{pod.url}/v1/chat/completions", json=CHAT) as response:
            assert response.status == 200
    assert len(engine.submitted) == 1


async def get_models(session: aiohttp.ClientSession, pod: SimPod) -> list[dict[str, Any]]:
    async with session.get(f"{pod.url}/v1/models") as response:
        data: list[dict[str, Any]] = (await response.json())["data"]
        return data


async def test_models_lists_the_base_model_and_its_adapters_like_vllm(
    pod: SimPod, session: aiohttp.ClientSession
) -> None:
    models = await get_models(session, pod)
    assert [(m["id"], m["root"], m["parent"]) for m in models] == [
        ("fake-model", "fake-model", None),
        ("sql-lora", "/adapters/sql", "fake-model"),
    ]
    assert all(m["max_model_len"] == 1024 and m["owned_by"] == "vllm" for m in models)


async def lora(
    session: aiohttp.ClientSession, pod: SimPod, action: str, body: dict[str, Any]
) -> tuple[int, str]:
    async with session.post(f"{pod.url}/v1/{action}_lora_adapter", json=body) as response:
        return response.status, await response.text()


async def test_adapters_load_and_unload_with_vllms_answers(
    pod: SimPod, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    body = {"lora_name": "chat-lora", "lora_path": "/adapters/chat"}
    assert await lora(session, pod, "load", body) == (
        200,
        "Success: LoRA adapter 'chat-lora' added successfully.",
    )
    assert engine.loras == ["sql-lora", "chat-lora"]
    models = await get_models(session, pod)
    assert ("chat-lora", "/adapters/chat") in [(m["id"], m["root"]) for m in models]
    async with session.post(
        f"{pod.url}/v1/completions", json={"model": "chat-lora", "prompt": "hi"}
    ) as response:
        assert response.status == 200
    assert await lora(session, pod, "unload", {"lora_name": "chat-lora"}) == (
        200,
        "Success: LoRA adapter 'chat-lora' removed successfully.",
    )
    assert engine.loras == ["sql-lora"]
    assert "chat-lora" not in [m["id"] for m in await get_models(session, pod)]


@pytest.mark.parametrize(
    ("action", "body", "status", "error_type"),
    [
        pytest.param("load", {"lora_name": "x"}, 400, "InvalidUserInput", id="load-no-path"),
        pytest.param("load", {"lora_path": "/x"}, 400, "InvalidUserInput", id="load-no-name"),
        pytest.param(
            "load",
            {"lora_name": "sql-lora", "lora_path": "/x"},
            400,
            "InvalidUserInput",
            id="load-twice",
        ),
        pytest.param("unload", {"lora_name": "nope"}, 404, "NotFoundError", id="unload-unknown"),
        pytest.param("unload", {}, 400, "InvalidUserInput", id="unload-no-name"),
        pytest.param("load", {"lora_name": 3}, 400, "BadRequestError", id="load-wrong-type"),
    ],
)
async def test_adapter_requests_that_cannot_be_honoured(
    client: Client, action: str, body: dict[str, Any], status: int, error_type: str
) -> None:
    url = f"{client.pod.url}/v1/{action}_lora_adapter"
    async with client.session.post(url, json=body) as response:
        assert response.status == status
        assert (await response.json())["error"]["type"] == error_type


async def test_metrics_parse_as_prometheus_text(
    pod: SimPod, session: aiohttp.ClientSession
) -> None:
    async with session.get(f"{pod.url}/metrics") as response:
        assert response.content_type == "text/plain"
        text = await response.text()
    names = {family.name for family in text_string_to_metric_families(text)}
    assert "vllm:num_requests_running" in names


async def test_stop_stops_serving_then_the_engine(engine: FakeEngine) -> None:
    async with serve_pod(engine) as pod:
        assert engine.started
        url = pod.url
    assert engine.stopped
    assert not pod.ready
    async with aiohttp.ClientSession() as client:
        with pytest.raises(aiohttp.ClientConnectionError):
            await client.get(f"{url}/health")
    await pod.stop()  # a second stop is harmless
