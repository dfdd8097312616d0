"""The datastore: the pool's endpoints with their latest metrics, kept current by collectors.

Snapshots: `endpoints()` returns an immutable tuple of `EndpointState`s. Every change (a reconcile,
one collector's scrape) builds a new tuple and swaps it in with one attribute assignment, so a
reader, on any thread, sees a whole snapshot and never a half-applied update (STYLE §12).

Reconcile is level-triggered (STYLE §13): `reconcile(endpoints)` makes the datastore hold exactly
that list, by name. A new endpoint starts with empty metrics (`updated_at` 0: stale until its first
scrape) and a collector; a removed one loses its collector and state; a changed one (address,
port, labels, metrics port) restarts its collector from empty metrics, since old values belong to
another server. Replaying the same list changes nothing.

Ownership, lifecycle, shutdown (STYLE §14): everything runs on one event loop. The datastore owns
the `MetricsDataSource` (its HTTP client) and one collector task per endpoint. `start()` opens the
client and starts collectors for endpoints reconciled before it; `close()` cancels every collector
task, waits for them all, then closes the client. `reconcile()` and `close()` must be called on the
loop's thread; `endpoints()` may be called from anywhere. In-flight request counts are not kept
here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from types import TracebackType

from igw.epp.datalayer.collector import Collector
from igw.epp.datalayer.engines import CoreMetricsExtractor
from igw.epp.datalayer.scraper import MetricsDataSource
from igw.epp.endpoints import Endpoint, EndpointState, Metrics

__all__ = ["Datastore"]

_EMPTY = Metrics()


class Datastore:
    """Implements `EndpointSource`; one per EPP."""

    def __init__(
        self,
        source: MetricsDataSource | None = None,
        extractor: CoreMetricsExtractor | None = None,
        *,
        refresh_interval_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source or MetricsDataSource()
        self._extractor = extractor or CoreMetricsExtractor()
        self._interval_s = refresh_interval_s
        self._clock = clock
        self._snapshot: tuple[EndpointState, ...] = ()
        self._positions: dict[str, int] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self._started = False
        self._closed = False

    def endpoints(self) -> tuple[EndpointState, ...]:
        """The current snapshot, in the order endpoints were reconciled."""
        return self._snapshot

    async def start(self) -> None:
        """Open the HTTP client and start collecting for the endpoints already known."""
        if self._closed:
            raise RuntimeError("datastore is closed")
        await self._source.start()
        self._started = True
        for state in self._snapshot:
            self._start_collector(state.endpoint)

    def reconcile(self, endpoints: Sequence[Endpoint]) -> None:
        """Make the datastore hold exactly `endpoints` (unique names); idempotent."""
        names = [endpoint.name for endpoint in endpoints]
        if len(set(names)) != len(names):
            duplicates = sorted({name for name in names if names.count(name) > 1})
            raise ValueError(f"duplicate endpoint names: {duplicates}")
        if self._closed:
            raise RuntimeError("datastore is closed")
        current = {state.endpoint.name: state for state in self._snapshot}
        states: list[EndpointState] = []
        for endpoint in endpoints:
            old = current.pop(endpoint.name, None)
            if old is not None and old.endpoint == endpoint:
                states.append(old)
                continue
            self._stop_collector(endpoint.name)
            states.append(EndpointState(endpoint, _EMPTY))
            if self._started:
                self._start_collector(endpoint)
        for name in current:
            self._stop_collector(name)
        self._positions = {state.endpoint.name: index for index, state in enumerate(states)}
        self._snapshot = tuple(states)

    async def close(self) -> None:
        """Cancel every collector, wait for them, then close the HTTP client; idempotent."""
        self._closed = True
        tasks = [*self._tasks.values(), *self._stopping]
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._source.close()

    async def __aenter__(self) -> Datastore:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _start_collector(self, endpoint: Endpoint) -> None:
        collector = Collector(
            endpoint,
            self._extractor.mapping_for(endpoint),
            self._source,
            lambda metrics: self._publish(endpoint, metrics),
            interval_s=self._interval_s,
            clock=self._clock,
        )
        self._tasks[endpoint.name] = asyncio.create_task(
            collector.run(_EMPTY), name=f"epp-metrics-collector:{endpoint.name}"
        )

    def _stop_collector(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
            # Its cancellation completes on a later loop turn; close() waits for it if need be.
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    def _publish(self, endpoint: Endpoint, metrics: Metrics) -> None:
        snapshot = self._snapshot
        index = self._positions.get(endpoint.name)
        # Identity, not equality: a collector of a replaced endpoint must not write.
        if index is not None and snapshot[index].endpoint is endpoint:
            updated = list(snapshot)
            updated[index] = EndpointState(endpoint, metrics)
            self._snapshot = tuple(updated)
