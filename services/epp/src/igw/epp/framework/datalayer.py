"""The data-layer kinds: a data source (`metrics-data-source`) and its extractor
(`core-metrics-extractor`), as the datastore uses them.

The datastore runs one collector per endpoint. The collector asks the source for that endpoint's
`MetricsClient` once, fetches a page from it every refresh interval, and hands the page to the
endpoint's `MetricsReader` (from the extractor). The reader turns the page into new `Metrics`.
A fetch or extraction that fails raises; the collector logs it and keeps the previous metrics. A
collector gives its client back with `release` when it stops. The source brackets all collectors
with `start` and `close`.
"""

from __future__ import annotations

from typing import Protocol

from igw.epp.endpoints import Endpoint, Metrics
from igw.epp.framework.plugin import Plugin

__all__ = ["DataExtractor", "DataSource", "MetricsClient", "MetricsReader"]


class MetricsClient(Protocol):
    """One endpoint's connection to its metrics page."""

    @property
    def completed(self) -> int:
        """Pages fetched whole so far."""

    async def fetch(self) -> bytes:
        """The page body; raises when the page cannot be fetched, with the reason."""

    def close(self) -> None: ...


class MetricsReader(Protocol):
    """Reads one endpoint's pages; may keep hints between pages (it belongs to that endpoint)."""

    def extract(self, body: bytes, previous: Metrics, now: float) -> tuple[Metrics, list[str]]:
        """New metrics (`previous` for what the page lacks) and the names of missing metrics."""


class DataSource(Plugin, Protocol):
    """Where endpoint metrics come from; one instance per EPP, shared by every collector."""

    @property
    def fetched(self) -> int:
        """Pages fetched whole by every client made here."""

    def client_for(self, endpoint: Endpoint) -> MetricsClient: ...

    def release(self, client: MetricsClient) -> None:
        """Closes a client `client_for` made."""

    async def start(self) -> None: ...

    async def close(self) -> None:
        """Closes every client still open; called after the collectors stopped."""


class DataExtractor(Plugin, Protocol):
    """Turns metrics pages into `Metrics`; one per EPP, a reader per endpoint."""

    def reader_for(self, endpoint: Endpoint) -> MetricsReader: ...
