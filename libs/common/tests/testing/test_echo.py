"""Tests for the echo backend that stands in for model servers."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator

import aiohttp
import pytest

from igw.common.testing.echo import EchoBackend, run_echo_backends


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def backend() -> AsyncIterator[EchoBackend]:
    async with EchoBackend("alpha") as started:
        yield started


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH"])
async def test_answers_any_method_and_path(
    backend: EchoBackend, session: aiohttp.ClientSession, method: str
) -> None:
    url = f"{backend.url}/v1/chat/completions?stream=false"
    async with session.request(method, url, headers={"X-Gateway-Model-Name": "m"}) as response:
        answer = await response.json()
        served_by = response.headers["x-served-by"]

    assert response.status == 200
    assert served_by == "alpha"
    assert answer["served_by"] == "alpha"
    assert answer["port"] == backend.port
    assert answer["method"] == method
    assert answer["path"] == "/v1/chat/completions?stream=false"
    assert answer["headers"]["x-gateway-model-name"] == "m"


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize(
    "chunked", [pytest.param(False, id="length"), pytest.param(True, id="chunked")]
)
async def test_reports_the_whole_body_hash(
    backend: EchoBackend, session: aiohttp.ClientSession, chunked: bool
) -> None:
    # 3 MiB: above aiohttp's default 1 MiB request limit, which the echo must not apply.
    body = bytes(range(256)) * (3 * 4096)
    # aiohttp warns about large raw bytes bodies; a BytesIO is still sent with Content-Length.
    payload = _chunks(body, 65536) if chunked else io.BytesIO(body)

    async with session.post(f"{backend.url}/upload", data=payload) as response:
        answer = await response.json()

    assert answer["body_len"] == len(body)
    assert answer["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert ("transfer-encoding" in answer["headers"]) is chunked


async def test_empty_body_hash_is_the_empty_string_hash(
    backend: EchoBackend, session: aiohttp.ClientSession
) -> None:
    async with session.get(backend.url) as response:
        answer = await response.json()

    assert answer["body_len"] == 0
    assert answer["body_sha256"] == hashlib.sha256(b"").hexdigest()


async def test_backends_get_distinct_ports_and_stop_listening(
    session: aiohttp.ClientSession,
) -> None:
    async with run_echo_backends("a", "b") as backends:
        urls = {name: backend.url for name, backend in backends.items()}
        for name, url in urls.items():
            async with session.get(url) as response:
                assert (await response.json())["served_by"] == name

    assert len(set(urls.values())) == 2
    with pytest.raises(aiohttp.ClientConnectionError):
        await session.get(urls["a"])


async def test_starting_twice_is_refused(backend: EchoBackend) -> None:
    with pytest.raises(RuntimeError, match="already started"):
        await backend.start()
