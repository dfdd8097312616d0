"""Pytest fixtures for tests that run real processes: refused ports and Envoy gateways.

Load with `pytest_plugins = ["igw.common.testing.pytest_plugin"]`. Every Envoy a test starts
through `envoy_factory` is stopped at teardown; when the test fails, the tail of each Envoy's log
is attached to the failure report as its own section.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import pytest

from igw.common.testing.envoy_process import EnvoyProcess
from igw.common.testing.ports import refused_port as _refused_port

_STARTED_ENVOYS = pytest.StashKey[list[EnvoyProcess]]()
_LOG_TAIL_LINES = 50


class EnvoyFactory:
    """Starts Envoy processes for one test and remembers them for teardown."""

    def __init__(self) -> None:
        self.started: list[EnvoyProcess] = []

    def __call__(
        self, config: dict[str, Any], *, log_level: str = "warning", concurrency: int = 1
    ) -> EnvoyProcess:
        """Start Envoy and block until it is ready."""
        envoy = self._track(EnvoyProcess(config, log_level=log_level, concurrency=concurrency))
        return envoy.start()

    async def start_async(
        self, config: dict[str, Any], *, log_level: str = "warning", concurrency: int = 1
    ) -> EnvoyProcess:
        """Start Envoy and wait until it is ready without blocking the event loop."""
        envoy = self._track(EnvoyProcess(config, log_level=log_level, concurrency=concurrency))
        return await envoy.start_async()

    def stop_all(self) -> None:
        for envoy in self.started:
            envoy.stop()

    def _track(self, envoy: EnvoyProcess) -> EnvoyProcess:
        self.started.append(envoy)
        return envoy


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port where connections are refused for the whole test (`ports.refused_port`)."""
    with _refused_port() as port:
        yield port


@pytest.fixture
def envoy_factory(request: pytest.FixtureRequest) -> Iterator[EnvoyFactory]:
    """Start Envoys with `envoy_factory(config)` (or `await envoy_factory.start_async(config)`)."""
    factory = EnvoyFactory()
    request.node.stash[_STARTED_ENVOYS] = factory.started
    yield factory
    factory.stop_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach each started Envoy's log tail to a failed test's report."""
    report = yield
    if report.failed:
        for envoy in item.stash.get(_STARTED_ENVOYS, []):
            title = f"Envoy (admin :{envoy.admin_port}) last {_LOG_TAIL_LINES} log lines"
            report.sections.append((title, envoy.log_tail(_LOG_TAIL_LINES)))
    return report
