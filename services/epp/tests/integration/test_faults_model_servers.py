"""Fault tests: a model server that dies, resets or stalls mid-answer, under load, through a real
Envoy and the EPP (real data layer, lean response mode).

The pool is a healthy `GeneratingModelServer` and a faulty raw-socket server that answers 200
(SSE for `"stream": true`, else JSON with a `content-length`), sends part of the answer, then:
closes the connection (a crashed process: FIN), resets it (RST), or goes quiet (stalls) with
the headers sent or before them. 8 clients, half streaming, send requests; what a user notices:

* every request either succeeds whole, or fails visibly: a 5xx status with a body, or a broken
  transfer the HTTP client reports. Never a 200 that ends cleanly with part of the answer;
* nothing hangs: a stall is ended by the route timeout (a 504 `upstream request timeout` when
  no headers had come, a reset transfer when they had) well within the client's own limit.

Each test prints its summary: requests sent, succeeded, failed (and how they failed).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import socket
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from igw.common.testing.http_server import LoopbackServer
from igw.common.testing.pytest_plugin import EnvoyFactory
from igw.epp.testing.generating_server import GeneratingModelServer
from igw.epp.testing.metrics_server import MetricsServers
from igw.epp.testing.scraped_gateway import open_scraped_gateway

pytestmark = pytest.mark.envoy

ROUTE_TIMEOUT_S = 3.0
CLIENT_LIMIT_S = ROUTE_TIMEOUT_S + 30.0
"""A request still open this long hangs: the route timeout plus a loaded machine's slack."""
CLIENTS = 8
REQUESTS = 48
SSE_EVENT = b'data: {"object":"text_completion","choices":[{"text":"x"}]}\n\n'


class FaultyServer(LoopbackServer):
    """Answers 200 and part of each answer, then fails as `fault` says (module docstring)."""

    kind = "faulty model server"
    handler_cancellation = True  # a stalled handler ends when Envoy gives up on it

    def __init__(self, fault: str) -> None:
        super().__init__(f"faulty-{fault}")
        self.fault = fault
        self.hits = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.hits += 1
        ask = await request.json()
        if self.fault == "stalls-before-headers":
            await asyncio.Event().wait()
        response = web.StreamResponse()
        if ask.get("stream"):
            response.content_type = "text/event-stream"
            await response.prepare(request)
            for _ in range(3):
                await response.write(SSE_EVENT)
        else:
            response.content_type = "application/json"
            response.content_length = 5000
            await response.prepare(request)
            await response.write(b'{"choices": [' + b" " * 1000)
        if self.fault == "stalls":
            await asyncio.Event().wait()
        # Long enough for the 200 to reach the client first: the failure comes mid-answer.
        await asyncio.sleep(0.3)
        transport = request.transport
        assert transport is not None
        if self.fault == "resets":
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.close()  # "dies": the kernel closes a crashed process's connections (FIN)
        return response


@contextlib.asynccontextmanager
async def _gateway(
    envoy_factory: EnvoyFactory, workdir: Path, fault: str
) -> AsyncIterator[tuple[str, GeneratingModelServer, FaultyServer]]:
    """The gateway's URL, the healthy pod and the faulty one."""
    async with contextlib.AsyncExitStack() as stack:
        healthy = await stack.enter_async_context(GeneratingModelServer("healthy"))
        faulty = await stack.enter_async_context(FaultyServer(fault))
        pages = MetricsServers()
        stack.push_async_callback(pages.close)
        metrics = await pages.start(2)
        pods = {"healthy": (healthy.port, metrics[0]), "faulty": (faulty.port, metrics[1])}
        gateway = await stack.enter_async_context(
            open_scraped_gateway(envoy_factory, workdir, pods, route_timeout_s=ROUTE_TIMEOUT_S)
        )
        yield gateway.url, healthy, faulty


async def _one(session: aiohttp.ClientSession, url: str, i: int, stream: bool) -> str:
    """ "ok", or how the request failed as its client saw it; "SILENT ..." / "HANG" are bugs."""
    body = {"model": "m", "prompt": f"request {i}", "max_tokens": 20, "stream": stream}
    try:
        async with asyncio.timeout(CLIENT_LIMIT_S):
            async with session.post(url + "/v1/completions", json=body) as response:
                try:
                    text = await response.text()
                except aiohttp.ClientPayloadError:
                    return f"{response.status} then a broken transfer"
    except TimeoutError:
        return "HANG"
    except aiohttp.ClientError as e:
        return type(e).__name__
    if response.status != 200:
        return f"{response.status} {text.strip()[:40]!r}" if text else f"{response.status} EMPTY"
    complete = text.rstrip().endswith("data: [DONE]") if stream else _whole_json(text)
    return "ok" if complete else "SILENT truncated 200"


def _whole_json(text: str) -> bool:
    try:
        return bool(json.loads(text).get("choices"))
    except ValueError:
        return False


async def _load(url: str) -> collections.Counter[str]:
    outcomes: collections.Counter[str] = collections.Counter()
    queue = list(range(REQUESTS))

    async def client(session: aiohttp.ClientSession, stream: bool) -> None:
        while queue:
            outcomes[await _one(session, url, queue.pop(), stream)] += 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session, i % 2 == 1) for i in range(CLIENTS)))
    return outcomes


@pytest.mark.parametrize("fault", ["dies", "resets", "stalls", "stalls-before-headers"])
async def test_a_failing_model_server_fails_requests_visibly_never_silently(
    envoy_factory: EnvoyFactory,
    tmp_path: Path,
    fault: str,
    fault_report: Callable[[str], None],
) -> None:
    async with _gateway(envoy_factory, tmp_path, fault) as (
        url,
        healthy,
        faulty,
    ):
        outcomes = await _load(url)
    failed = sum(n for outcome, n in outcomes.items() if outcome != "ok")
    summary = (
        f"model server {fault}: sent {sum(outcomes.values())}, "
        f"succeeded {outcomes['ok']}, failed {failed} {dict(outcomes)}"
    )
    fault_report(summary)
    assert sum(outcomes.values()) == REQUESTS
    assert faulty.hits > 0, "no request reached the faulty pod"
    assert len(healthy.received) > 0, "the healthy pod took nothing"
    for outcome in outcomes:
        assert not outcome.startswith(("SILENT", "HANG")), summary
        assert "EMPTY" not in outcome, summary  # a status with no word of why
    if fault == "stalls-before-headers":
        assert set(outcomes) <= {"ok", "504 'upstream request timeout'"}, summary
