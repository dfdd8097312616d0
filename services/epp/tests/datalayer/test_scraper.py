"""The metrics data source: real HTTP against loopback servers, failures as `ScrapeError`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from igw.common.testing import free_port
from igw.epp.datalayer.scraper import MetricsDataSource, MetricsDataSourceParams, ScrapeError
from igw.epp.endpoints import Endpoint
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


@pytest.mark.parametrize("compress", [False, True], ids=["identity", "gzip"])
async def test_fetch_returns_the_page(servers: MetricsServers, compress: bool) -> None:
    page = vllm_page()
    (port,) = await servers.start(1, page)
    source = MetricsDataSource(compress=compress)
    await source.start()
    try:
        assert await source.fetch(source.url_for(Endpoint("a", "127.0.0.1", port))) == page
    finally:
        await source.close()


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
        await source.fetch(source.url_for(Endpoint("a", "127.0.0.1", port)))
    assert time.monotonic() - started < 1.0


async def test_refused_connection_is_a_scrape_error(source: MetricsDataSource) -> None:
    with pytest.raises(ScrapeError, match="Connect"):
        await source.fetch(source.url_for(Endpoint("a", "127.0.0.1", free_port())))


async def test_fetch_before_start_is_a_scrape_error() -> None:
    with pytest.raises(ScrapeError, match="not started"):
        await MetricsDataSource().fetch(MetricsDataSource().url_for(Endpoint("a", "h", 1)))


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
    assert str(MetricsDataSource.from_params(params).url_for(endpoint)) == url


def test_defaults_match_upstream() -> None:
    assert MetricsDataSourceParams() == MetricsDataSourceParams(
        scheme="http", path="/metrics", insecure_skip_verify=True
    )


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"scheme": "ftp"}, id="scheme"),
        pytest.param({"path": "metrics"}, id="relative-path"),
        pytest.param({"insecureSkipVerify": "yes"}, id="not-a-bool"),
        pytest.param({"port": 9000}, id="unknown-field"),
    ],
)
def test_bad_parameters_are_refused(params: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="metrics-data-source parameters"):
        MetricsDataSource.from_params(params)
