"""The metrics data source: real HTTP against loopback servers, failures as `ScrapeError`."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from igw.common.tls import self_signed_pair
from igw.epp.datalayer.metrics_data_source import (
    MetricsDataSource,
    MetricsDataSourceParams,
    ScrapeError,
)
from igw.epp.endpoints import Endpoint
from igw.epp.framework import PluginHandle
from igw.epp.testing import Behaviour, MetricsServers, vllm_page


@pytest.fixture
async def servers() -> AsyncIterator[MetricsServers]:
    servers = MetricsServers(gzip_pages=True)
    yield servers
    await servers.close()


@pytest.fixture
async def source() -> AsyncIterator[MetricsDataSource]:
    source = MetricsDataSource(timeout_s=0.2)
    await source.start()
    yield source
    await source.close()


async def test_fetch_returns_the_page_uncompressed(
    servers: MetricsServers, source: MetricsDataSource
) -> None:
    """The server would gzip for a client that asks; the source does not ask."""
    page = vllm_page()
    (port,) = await servers.start(1, page)
    client = source.client_for(Endpoint("a", "127.0.0.1", port))
    assert await client.fetch() == page
    assert await client.fetch() == page
    assert source.fetched == 2


@pytest.mark.parametrize(
    ("behaviour", "message"),
    [
        pytest.param(Behaviour.ERROR, "HTTP 500", id="http-500"),
        pytest.param(Behaviour.HANG, "within 0.2 s", id="slow-past-timeout"),
    ],
)
async def test_failures_are_scrape_errors(
    servers: MetricsServers, source: MetricsDataSource, behaviour: Behaviour, message: str
) -> None:
    (port,) = await servers.start(1)
    servers.set_behaviour(port, behaviour)
    started = time.monotonic()
    with pytest.raises(ScrapeError, match=message):
        await source.client_for(Endpoint("a", "127.0.0.1", port)).fetch()
    assert time.monotonic() - started < 1.0


async def test_refused_connection_is_a_scrape_error(
    source: MetricsDataSource, refused_port: int
) -> None:
    port = refused_port
    with pytest.raises(ScrapeError, match=f"127.0.0.1:{port}/metrics: cannot connect"):
        await source.client_for(Endpoint("a", "127.0.0.1", port)).fetch()


async def test_close_closes_every_client(servers: MetricsServers) -> None:
    (port,) = await servers.start(1)
    source = MetricsDataSource()
    client = source.client_for(Endpoint("a", "127.0.0.1", port))
    await client.fetch()
    await source.close()
    with pytest.raises(ScrapeError, match="closed"):
        await client.fetch()
    assert source.fetched == 1


@pytest.mark.parametrize(
    ("params", "endpoint", "url"),
    [
        pytest.param({}, Endpoint("a", "10.0.0.1", 8000), "http://10.0.0.1:8000/metrics",
                     id="defaults"),
        pytest.param({"scheme": "https", "path": "/m"}, Endpoint("a", "fd00::1", 8000),
                     "https://[fd00::1]:8000/m", id="https-ipv6"),
        pytest.param({}, Endpoint("a", "10.0.0.1", 8000, metrics_port=9000),
                     "http://10.0.0.1:9000/metrics", id="metrics-port"),
    ],
)  # fmt: skip
def test_url_for(params: dict[str, object], endpoint: Endpoint, url: str) -> None:
    source = MetricsDataSource.from_config("m", params, PluginHandle())
    assert source.url_for(endpoint) == url
    assert source.client_for(endpoint).url == url


def test_defaults_match_upstream() -> None:
    assert MetricsDataSourceParams() == MetricsDataSourceParams(
        scheme="http", path="/metrics", insecure_skip_verify=True
    )


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"scheme": "ftp"}, id="scheme"),
        pytest.param({"path": "metrics"}, id="relative-path"),
        pytest.param({"path": "/a b"}, id="space-in-path"),
        pytest.param({"path": "/métriques"}, id="non-ascii-path"),
        pytest.param({"insecureSkipVerify": "yes"}, id="not-a-bool"),
        pytest.param({"port": 9000}, id="unknown-field"),
    ],
)
def test_bad_parameters_are_refused(params: dict[str, object]) -> None:
    with pytest.raises(msgspec.ValidationError):
        MetricsDataSource.from_config("m", params, PluginHandle())


TLS_PAGE = vllm_page()


@pytest.fixture
async def tls_port(tmp_path: Path) -> AsyncIterator[int]:
    """A TLS server with a self-signed certificate, answering every request with a page."""
    cert, key = self_signed_pair("model-server")
    (tmp_path / "tls.crt").write_bytes(cert)
    (tmp_path / "tls.key").write_bytes(key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    page = TLS_PAGE

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(page), page))
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    yield server.sockets[0].getsockname()[1]
    server.close()


@pytest.mark.parametrize(
    ("params", "error"),
    [
        pytest.param({"scheme": "https"}, None, id="skip-verify-by-default"),
        pytest.param({"scheme": "https", "insecureSkipVerify": False}, "CERTIFICATE_VERIFY_FAILED",
                     id="verify"),
    ],
)  # fmt: skip
async def test_https_scheme_and_verification(
    tls_port: int, params: dict[str, object], error: str | None
) -> None:
    source = MetricsDataSource.from_config("m", params, PluginHandle())
    client = source.client_for(Endpoint("a", "127.0.0.1", tls_port))
    try:
        if error is None:
            assert await client.fetch() == TLS_PAGE
        else:
            with pytest.raises(ScrapeError, match=error):
                await client.fetch()
    finally:
        await source.close()
