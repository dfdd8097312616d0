"""`FlowController`: the flow-control layer (§5.4) as the EPP's `Admission`.

    admit(request)  -> enqueue into (band = priority, flow = fairness id), or 429 at capacity
                    -> await the outcome: Dispatched (return), EvictedTTL (503), client gone
                       (the awaiting task is cancelled: the request leaves its queue at once)
    dispatcher      -> one task: expire TTLs; saturation over ALL the pool's endpoints; for
                       each band, highest first: saturation >= the band's ceiling stops the
                       cycle (head-of-line blocking), else the fairness policy picks a flow and
                       its head is dispatched; one dispatch per cycle, as upstream

Ownership, lifecycle, shutdown: everything runs on the event loop; the dispatcher task is the
only one that dispatches, expires and collects garbage, `admit` the only one that enqueues and
(on cancellation) removes its own item. `start()` starts the dispatcher (the EPP's `start`),
`stop()` cancels it and ends every waiting request with EvictedOther (500); a request arriving
after `stop()` is RejectedOther (500).

Not busy-waiting: with nothing queued the dispatcher sleeps on an event set by the next enqueue.
With requests queued on a saturated pool it sleeps until `wake()` (a request completed, new
endpoint metrics were published: capacity may have changed), the next TTL deadline, or
`poll_s` at the latest, the fallback that makes a missed signal cost at most one poll; signals
closer together than `recheck_s` (2 ms) count as one look, so a flood of scrapes cannot make it
spin. After a
dispatch it yields once, so the admitted request is scheduled (and counted in flight) before the
next saturation check.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from time import perf_counter
from typing import Any, ClassVar

import structlog

from igw.common.errors import InferenceError
from igw.epp.endpoints import EndpointSource, EndpointState, InferenceRequest
from igw.epp.flowcontrol.bands import Band, Bands
from igw.epp.flowcontrol.config import FlowControlConfig
from igw.epp.flowcontrol.eviction import InFlight
from igw.epp.flowcontrol.metrics import FlowControlMetrics
from igw.epp.flowcontrol.outcomes import Outcome, outcome_error
from igw.epp.flowcontrol.queue import QueueItem
from igw.epp.framework.flowcontrol import UsageLimitPolicy
from igw.epp.framework.requestcontrol import SaturationDetector

__all__ = ["FlowController"]

_log = structlog.get_logger(__name__)
_QUEUED = "NotYetFinalized"
"""The enqueue histogram's outcome for a request that was queued (upstream's)."""


class FlowController:
    """`Admission` with flow control; see the module docstring."""

    waits: ClassVar[bool] = True

    def __init__(
        self,
        config: FlowControlConfig,
        policies: Mapping[str, Any],
        *,
        detector: SaturationDetector,
        source: EndpointSource,
        metrics: FlowControlMetrics,
        pool_name: str = "",
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = 0.05,
        recheck_s: float = 0.002,
        flow_gc_s: float = 300.0,
        band_gc_s: float = 600.0,
        in_flight: InFlight | None = None,
    ) -> None:
        self.config = config
        self.detector = detector
        self.source = source
        self.metrics = metrics
        self.pool_name = pool_name
        self.clock = clock
        self.poll_s = poll_s
        self.recheck_s = recheck_s
        self.bands = Bands(config, policies, now=clock(), flow_gc_s=flow_gc_s, band_gc_s=band_gc_s)
        self.usage_limit: UsageLimitPolicy = policies[config.usage_limit_policy]
        self.in_flight = in_flight
        self._saturation = metrics.pool_saturation.labels(pool_name)
        self._wakeup = asyncio.Event()
        self._deadlines: list[tuple[float, int, QueueItem]] = []
        self._seq = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._running = False
        self._next_gc = clock() + min(flow_gc_s, band_gc_s)
        self.cycles = 0
        """Dispatch cycles run (tests and benchmarks check the dispatcher is not spinning)."""

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._running = True
            self._task = asyncio.get_running_loop().create_task(self._run(), name="flow-control")

    async def stop(self) -> None:
        self._running = False
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        now = self.clock()
        for band in self.bands:
            for flow in band.flows.values():
                while (item := flow.head()) is not None:
                    self._finish(item, Outcome.EVICTED_OTHER, now, band)

    @property
    def running(self) -> bool:
        """The dispatcher task is alive."""
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        """Capacity may have changed (a request ended, endpoint metrics arrived)."""
        if self.bands.length and not self._wakeup.is_set():
            self._wakeup.set()

    # --- the Admission protocol --------------------------------------------------------------

    async def admit(self, request: InferenceRequest, candidates: Sequence[EndpointState]) -> None:  # noqa: ARG002 - saturation is over the whole pool
        item = self._enqueue(request)
        assert item.done is not None  # noqa: S101 - set by _enqueue
        try:
            outcome = await item.done
        except asyncio.CancelledError:
            if item.queued:  # the client went away while it waited
                self._finish(item, Outcome.EVICTED_CONTEXT_CANCELLED, self.clock())
            raise
        if outcome is not Outcome.DISPATCHED:
            raise outcome_error(outcome)

    def dispatched(self, request: InferenceRequest) -> None:
        """The request was scheduled (PreRequest): track it for eviction if sheddable."""
        if self.in_flight is not None:
            self.in_flight.dispatched(request, self.clock())

    def finished(self, request: InferenceRequest) -> None:
        """The request's response ended: it leaves the in-flight tracking; capacity freed."""
        if self.in_flight is not None:
            self.in_flight.finished(request)
        self.wake()

    def interruption(self, request: InferenceRequest) -> asyncio.Future[InferenceError] | None:
        """Resolves with the error to end the in-flight request with (eviction)."""
        return None if self.in_flight is None else self.in_flight.signal(request)

    # --- enqueue -----------------------------------------------------------------------------

    def _enqueue(self, request: InferenceRequest) -> QueueItem:
        started = perf_counter()
        now = self.clock()
        priority = str(request.priority)
        if not self._running:
            self.metrics.enqueue_duration.labels(
                request.fairness_id, priority, Outcome.REJECTED_OTHER.value
            ).observe(perf_counter() - started)
            raise outcome_error(Outcome.REJECTED_OTHER)
        band = self.bands.band(request.priority, now)
        labels = (
            request.fairness_id, priority, self.pool_name, request.incoming_model,
            request.target_model,
        )  # fmt: skip
        if not self.bands.fits(band, request.size_bytes):
            outcome = Outcome.REJECTED_CAPACITY
            self.metrics.queue_duration.labels(*labels[:2], outcome.value, *labels[2:]).observe(
                perf_counter() - started
            )
            self.metrics.enqueue_duration.labels(*labels[:2], outcome.value).observe(
                perf_counter() - started
            )
            raise outcome_error(outcome)
        item = QueueItem(
            request, request.priority, request.fairness_id, request.size_bytes, now,
            self.config.default_request_ttl, next(self._seq), labels,
            done=asyncio.get_running_loop().create_future(),
        )  # fmt: skip
        band.flow(request.fairness_id, now).push(item)
        self.bands.added(band, item)
        self.metrics.queue_size.labels(*labels).inc()
        self.metrics.queue_bytes.labels(*labels).inc(item.size)
        if item.ttl > 0:
            heapq.heappush(self._deadlines, (item.deadline, item.seq, item))
        self.metrics.enqueue_duration.labels(*labels[:2], _QUEUED).observe(perf_counter() - started)
        self._wakeup.set()
        return item

    def _finish(
        self, item: QueueItem, outcome: Outcome, now: float, band: Band | None = None
    ) -> None:
        """The item leaves its queue (if still in one) with `outcome`, recorded and announced."""
        if item.queued:
            band = band or self.bands.band(item.priority, now)
            band.flows[item.fairness_id].remove(item, now)
            self.bands.removed(band, item, now)
            self._left(item, outcome, now)
        if item.done is not None and not item.done.done():
            item.done.set_result(outcome)

    def _left(self, item: QueueItem, outcome: Outcome, now: float) -> None:
        labels = item.labels
        self.metrics.queue_size.labels(*labels).dec()
        self.metrics.queue_bytes.labels(*labels).dec(item.size)
        self.metrics.queue_duration.labels(*labels[:2], outcome.value, *labels[2:]).observe(
            max(now - item.enqueued_at, 0.0)
        )

    # --- the dispatcher ----------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wakeup.clear()
            now = self.clock()
            self._expire(now)
            if now >= self._next_gc:
                self.bands.collect_garbage(now)
                self._next_gc = now + min(self.bands.flow_gc_s, self.bands.band_gc_s)
            try:
                dispatched = self.bands.length > 0 and self.dispatch_cycle(now)
            except Exception:  # a policy's bug must not stop every request for good
                _log.exception("flow_control_cycle_failed")
                dispatched = False
            if dispatched:
                await asyncio.sleep(0)  # the admitted request schedules before the next check
                continue
            await self._sleep(now)

    async def _sleep(self, now: float) -> None:
        loop = asyncio.get_running_loop()
        looked_at = loop.time()
        if self.bands.length:
            timeout: float | None = self.poll_s
            if self._deadlines:
                timeout = min(self.poll_s, max(self._deadlines[0][0] - now, 0.0))
        else:
            timeout = max(self._next_gc - now, 0.0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wakeup.wait()
        # Signals can come in thousands a second (every endpoint's scrape): a saturated pool is
        # looked at again at most every `recheck_s`; the signals meanwhile are one look.
        early = self.recheck_s - (loop.time() - looked_at)
        if self.bands.length and early > 0:
            await asyncio.sleep(early)

    def _expire(self, now: float) -> None:
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, _, item = heapq.heappop(deadlines)
            if item.queued:
                self._finish(item, Outcome.EVICTED_TTL, now)
        if len(deadlines) > 64 and len(deadlines) > 2 * self.bands.length:
            # Entries of requests that left before their TTL: drop them (and their requests).
            self._deadlines = [entry for entry in deadlines if entry[2].queued]
            heapq.heapify(self._deadlines)

    def dispatch_cycle(self, now: float) -> bool:
        """One cycle (module docstring); True when a request was dispatched."""
        started = perf_counter()
        self.cycles += 1
        try:
            saturation = self.detector.saturation(self.source.endpoints())
            self._saturation.set(saturation)
            bands = self.bands.ordered
            ceilings = self.usage_limit.compute_limit(saturation, self.bands.priorities)
            for band, ceiling in zip(bands, ceilings, strict=True):
                if saturation >= ceiling:
                    self._starving(now)
                    return False
                if band.length == 0:
                    continue
                fairness_id = band.fairness.pick_flow(band.flows, band.fairness_state)
                item = None if fairness_id is None else band.flows[fairness_id].head()
                if item is None:
                    continue
                self._finish(item, Outcome.DISPATCHED, now, band)
                return True
            return False
        finally:
            self.metrics.dispatch_cycle.observe(perf_counter() - started)

    def _starving(self, now: float) -> None:
        """Saturated: evict for the highest band whose head waited too long (`eviction`)."""
        in_flight = self.in_flight
        if in_flight is None or not len(in_flight):
            return
        threshold = in_flight.config.starvation_threshold_s
        for band in self.bands.ordered:
            if band.length == 0:
                continue
            oldest = min(
                (item.enqueued_at for f in band.flows.values() if (item := f.head()) is not None),
                default=None,
            )
            if oldest is not None and now - oldest >= threshold:
                victim = in_flight.evict_below(band.priority, now)
                if victim is not None:
                    _log.info(
                        "flow_control_evicted", request_id=victim.request_id,
                        victim_priority=victim.priority, starving_priority=band.priority,
                    )  # fmt: skip
                return
