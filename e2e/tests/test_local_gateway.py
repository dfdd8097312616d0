"""`make run`'s local gateway end to end: Envoy, BBR, EPP and the simulated pool, as processes.

One gateway on free ports serves the routing tests of this module (they use distinct prompts, so
they do not steer each other through the prefix cache). `test_trace` starts its own, traced one;
`test_cli` runs the `igw-local` commands themselves.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import openai
import pytest
import pytest_asyncio

from igw.e2e import pool
from igw.e2e.gateway import GatewayPorts, LocalGateway
from igw.epp.admin.service import AdminClient

pytestmark = [pytest.mark.envoy, pytest.mark.asyncio(loop_scope="module")]

PODS = {"sim-0", "sim-1-rank-0", "sim-1-rank-1", "sim-2"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalGateway]:
    gw = LocalGateway(GatewayPorts.free(), tmp_path_factory.mktemp("gateway"))
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
        yield s


def chat(model: str, system: str, question: str, **extra: Any) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    return {"model": model, "messages": messages, "max_tokens": 8, **extra}


async def post(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any]
) -> tuple[int, str, Any]:
    """Status, the serving pod (x-inference-pod) and the answer (JSON, or text on errors)."""
    async with session.post(f"{url}/v1/chat/completions", json=body) as response:
        text = await response.text()
        pod = response.headers.get("x-inference-pod", "")
        answer = json.loads(text) if response.content_type == "application/json" else text
        return response.status, pod, answer


async def test_the_base_model_is_served_by_a_sim_pod(
    gateway: LocalGateway, session: aiohttp.ClientSession
) -> None:
    status, pod, answer = await post(session, gateway.url, chat(pool.BASE_MODEL, "Be brief.", "hi"))
    assert status == 200, answer
    assert pod in PODS
    assert answer["model"] == pool.BASE_MODEL


async def test_the_adapter_is_served_by_sim_2(
    gateway: LocalGateway, session: aiohttp.ClientSession
) -> None:
    served = []
    for i in range(5):
        body = chat(pool.ADAPTER, f"Review {i}.", f"how was dish {i}?")
        status, pod, answer = await post(session, gateway.url, body)
        assert status == 200, answer
        assert answer["model"] == pool.ADAPTER
        served.append(pod)
    assert served == ["sim-2"] * 5


async def test_an_unknown_model_gets_404_from_envoy(
    gateway: LocalGateway, session: aiohttp.ClientSession
) -> None:
    status, pod, answer = await post(session, gateway.url, chat("no-such-model", "s", "q"))
    assert status == 404
    assert "x-gateway-model-name" in answer
    assert not pod


def _openai_models(url: str) -> tuple[list[tuple[str, Any]], Any, int]:
    """What the official OpenAI client sees: the listed (id, parent), the adapter, a 404."""
    with openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        listed = [(m.id, getattr(m, "parent", None)) for m in client.models.list()]
        adapter = client.models.retrieve(pool.ADAPTER)
        try:
            client.models.retrieve("no-such-model")
        except openai.NotFoundError as e:
            return listed, adapter, e.status_code
    raise AssertionError("retrieving an unknown model did not fail")


async def test_the_openai_client_lists_the_served_models(gateway: LocalGateway) -> None:
    listed, adapter, missing = await asyncio.to_thread(_openai_models, gateway.url)
    assert listed == [(pool.BASE_MODEL, None), (pool.ADAPTER, pool.BASE_MODEL)]
    assert (adapter.id, adapter.object, adapter.owned_by) == (pool.ADAPTER, "model", "igw")
    assert adapter.created > 0
    assert missing == 404


async def _sse_events(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> list[str]:
    async with session.post(f"{url}/v1/chat/completions", json=body) as response:
        assert response.status == 200
        assert response.content_type == "text/event-stream"
        text = await response.text()
    return [event for event in text.split("\n\n") if event]


async def test_a_streamed_chat_arrives_complete(
    gateway: LocalGateway, session: aiohttp.ClientSession
) -> None:
    body = chat(pool.BASE_MODEL, "Stream.", "count to forty", stream=True, max_tokens=40)
    body["stream_options"] = {"include_usage": True}
    events = await _sse_events(session, gateway.url, body)
    # The same request straight to a pod: the gateway must pass on every event, in order.
    direct = await _sse_events(session, f"http://127.0.0.1:{gateway.ports.sim_first}", body)
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(event.removeprefix("data: ")) for event in events[:-1]]
    expected = [json.loads(event.removeprefix("data: ")) for event in direct[:-1]]
    assert [c["choices"] for c in chunks] == [c["choices"] for c in expected]
    assert chunks[-1]["usage"]["completion_tokens"] == 40
    assert len(events) == len(direct)


async def test_a_shared_long_system_prompt_sticks_to_one_pod_and_hits_its_cache(
    gateway: LocalGateway, session: aiohttp.ClientSession
) -> None:
    system = f"Session {secrets.token_hex(4)}. " + "Answer as a careful food critic. " * 300
    served, cached = [], []
    for i in range(6):
        status, pod, answer = await post(
            session, gateway.url, chat(pool.BASE_MODEL, system, f"question {i}")
        )
        assert status == 200, answer
        served.append(pod)
        cached.append(answer["usage"]["prompt_tokens_details"]["cached_tokens"])
    assert len(set(served)) == 1, served
    assert cached[0] == 0
    assert all(tokens > 1000 for tokens in cached[1:]), cached


def _endpoint_of(pod: str) -> str:
    """The EPP's endpoint name for an `x-inference-pod` value (ranks are `<pod>-rank-<i>`)."""
    return pod if "-rank-" in pod else f"{pod}-rank-0"


async def test_explain_shows_the_prefix_lead_and_the_gateway_follows_it(
    gateway: LocalGateway, session: aiohttp.ClientSession
) -> None:
    system = f"Explain {secrets.token_hex(4)}. " + "Answer as a careful wine critic. " * 300
    status, first_pod, answer = await post(
        session, gateway.url, chat(pool.BASE_MODEL, system, "question 0")
    )
    assert status == 200, answer
    holder = _endpoint_of(first_pod)
    body = chat(pool.BASE_MODEL, system, "question 1")
    target = f"127.0.0.1:{gateway.ports.epp_health}"
    async with grpc.aio.insecure_channel(target) as channel:
        explanation = await AdminClient(channel).explain(
            "/v1/chat/completions", {"content-type": "application/json"}, json.dumps(body).encode()
        )
    profile = explanation.profiles[explanation.primary_profile]
    prefix = next(c for c in profile.scorers if c.plugin_type == "prefix-cache-scorer")
    scores = dict(zip(profile.endpoints, prefix.scores, strict=True))
    assert scores[holder] > 0.5, scores
    assert all(score < scores[holder] for name, score in scores.items() if name != holder)
    assert explanation.picked[0] == holder
    status, pod, answer = await post(session, gateway.url, body)
    assert status == 200, answer
    assert _endpoint_of(pod) == holder, "the gateway routed elsewhere than Explain said"


async def test_a_second_gateway_on_the_same_ports_is_refused_clearly(
    gateway: LocalGateway, tmp_path_factory: pytest.TempPathFactory
) -> None:
    second = LocalGateway(gateway.ports, tmp_path_factory.mktemp("second"))
    with pytest.raises(RuntimeError, match=f"ports in use: listen :{gateway.ports.listen}, "):
        await second.start()
    assert all(child.process is None for child in second.children)
