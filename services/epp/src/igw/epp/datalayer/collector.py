"""One endpoint's scrape loop: fetch, scan, extract, publish, on a fixed tick.

Lifecycle: the `Datastore` creates one `Collector` per endpoint and runs `run()` as an asyncio task
that it owns; cancelling the task is the only way it ends, and closes the endpoint's HTTP client
(made on the first poll, one keep-alive connection reused across polls). The endpoint's reader
(from the extractor) keeps its scan hints, so each page is searched where the last one had its
families. The
tick is a ticker like upstream's
(`--refresh-metrics-interval`, 50 ms): a poll that overruns its tick is followed by the next one
at once, and missed ticks are dropped rather than replayed. The first poll may wait a phase
within one interval (`run(phase_s=...)`, chosen by the datastore's `phase_slots`).

Failure containment: a poll that fails (connection refused, HTTP error, the 1 s timeout, a
malformed page) publishes nothing, so the endpoint's last good `Metrics` keep their `updated_at`
and age into staleness, which readers judge with `EndpointState.age(now)`. Nothing but
cancellation leaves the loop. Logging is per state change: the first failure (and a reminder
every `_REMIND_S` while it lasts), the recovery, and a change in which core metrics are missing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from igw.epp.datalayer.engines import ExtractError
from igw.epp.datalayer.metrics_data_source import ScrapeError
from igw.epp.datalayer.scanner import ScanError
from igw.epp.endpoints import Endpoint, Metrics
from igw.epp.framework.datalayer import DataSource, MetricsClient, MetricsReader

__all__ = ["Collector"]

_REMIND_S = 60.0

_log = structlog.get_logger(__name__)


class _FailureLog:
    """Rate-limits one endpoint's scrape failure logs to state changes and a periodic reminder."""

    def __init__(self, endpoint: str, clock: Callable[[], float]) -> None:
        self._endpoint = endpoint
        self._clock = clock
        self._since: float | None = None
        self._failures = 0
        self._reminded = 0.0
        self._missing: list[str] = []

    def failed(self, error: str, *, unexpected: bool = False) -> None:
        """Count a failure; `unexpected` (a bug, not the server's fault) logs the traceback."""
        now = self._clock()
        self._failures += 1
        if self._since is None:
            self._since = self._reminded = now
            _log.warning(
                "epp.datalayer.scrape_failed", endpoint=self._endpoint, error=error,
                exc_info=unexpected,
            )  # fmt: skip
        elif now - self._reminded >= _REMIND_S:
            self._reminded = now
            _log.warning(
                "epp.datalayer.scrape_still_failing", endpoint=self._endpoint, error=error,
                failures=self._failures, for_s=round(now - self._since, 1),
            )  # fmt: skip

    def succeeded(self, missing: list[str]) -> None:
        if self._since is not None:
            _log.info(
                "epp.datalayer.scrape_recovered", endpoint=self._endpoint,
                failures=self._failures, after_s=round(self._clock() - self._since, 3),
            )  # fmt: skip
            self._since, self._failures = None, 0
        if missing != self._missing:
            self._missing = missing
            if missing:
                _log.warning(
                    "epp.datalayer.metrics_missing", endpoint=self._endpoint, missing=missing
                )


class Collector:
    """Polls one endpoint until cancelled, publishing each good scrape."""

    def __init__(
        self,
        endpoint: Endpoint,
        reader: MetricsReader,
        source: DataSource,
        publish: Callable[[Metrics], None],
        *,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self._reader = reader
        self._source = source
        self._publish = publish
        self._interval_s = interval_s
        self._clock = clock
        self._client: MetricsClient | None = None  # made on the first poll: a task cancelled
        # before it ever ran leaves nothing behind
        self._log = _FailureLog(endpoint.name, clock)

    async def run(self, metrics: Metrics, *, phase_s: float = 0.0) -> None:
        """Poll every tick, starting after `phase_s` from `metrics`; returns only by
        cancellation, which closes the endpoint's connection."""
        try:
            if phase_s > 0:
                await asyncio.sleep(phase_s)
            next_tick = self._clock()
            while True:
                metrics = await self.poll_once(metrics)
                next_tick += self._interval_s
                now = self._clock()
                next_tick = max(next_tick, now)  # overran: poll at once, drop the missed ticks
                await asyncio.sleep(next_tick - now)
        finally:
            if self._client is not None:
                self._source.release(self._client)

    async def poll_once(self, metrics: Metrics) -> Metrics:
        """One scrape; the new metrics, or `metrics` unchanged when the scrape failed."""
        try:
            client = self._client
            if client is None:
                client = self._client = self._source.client_for(self.endpoint)
            body = await client.fetch()
            updated, missing = self._reader.extract(body, metrics, self._clock())
        except (ScrapeError, ScanError, ExtractError) as exc:
            self._log.failed(str(exc))
            return metrics
        except Exception as exc:  # a bug must not end the loop: the endpoint would freeze
            self._log.failed(f"{type(exc).__name__}: {exc}", unexpected=True)
            return metrics
        self._log.succeeded(missing)
        self._publish(updated)
        return updated
