"""Priority bands: the flows of one priority, their policies and their limits.

`Bands` holds one `Band` per priority, highest first. The bands of `priorityBands` live as long
as the controller; a request of any other priority gets a band made on demand from the
`defaultPriorityBand` template (upstream's dynamic provisioning), removed again once it has been
empty for `band_gc_s`. Inside a band, a flow (fairness id) is made on its first request and
removed once it has been empty for `flow_gc_s` (upstream: flow GC 5 min, band GC 10 min).

Bounded flows (beyond upstream): fairness ids come from clients, and a client naming a new one per
request would keep a flow per request for `flow_gc_s`. So a band holding `MAX_FLOWS` flows drops
every empty one before it makes another: past the bound, a band holds only flows with queued
requests (which the queue's capacity bounds), and the sweep costs O(1) per new flow, amortised.
An empty flow that is dropped early loses nothing but its place in the fairness policy's round.

Capacity (upstream's `hasCapacity`): a request fits when the totals over every band stay within
the global `maxBytes`/`maxRequests` and its band's stay within the band's (0 = unlimited).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from igw.epp.flowcontrol.config import BandConfig, FlowControlConfig
from igw.epp.flowcontrol.queue import FlowQueue, QueueItem
from igw.epp.framework.flowcontrol import FairnessPolicy, OrderingPolicy

__all__ = ["MAX_FLOWS", "Band", "Bands"]

MAX_FLOWS = 10_000
"""Flows a band keeps before it drops its empty ones early (module docstring)."""


@dataclass(slots=True, eq=False)
class Band:
    priority: int
    max_bytes: int
    max_requests: int
    fairness: FairnessPolicy
    ordering: OrderingPolicy
    dynamic: bool
    fairness_state: Any = None
    flows: dict[str, FlowQueue] = field(default_factory=dict)
    length: int = 0
    byte_size: int = 0
    idle_since: float | None = None

    def flow(self, fairness_id: str, now: float) -> FlowQueue:
        flow = self.flows.get(fairness_id)
        if flow is None:
            if len(self.flows) >= MAX_FLOWS:
                self.flows = {k: f for k, f in self.flows.items() if f.idle_since is None}
            flow = self.flows[fairness_id] = FlowQueue(fairness_id, self.ordering, now)
        return flow

    def fits(self, size: int) -> bool:
        if self.max_bytes > 0 and self.byte_size + size > self.max_bytes:
            return False
        return not (self.max_requests > 0 and self.length + 1 > self.max_requests)


class Bands:
    """Every band, highest priority first; see the module docstring."""

    def __init__(
        self,
        config: FlowControlConfig,
        policies: Mapping[str, Any],
        *,
        now: float,
        flow_gc_s: float = 300.0,
        band_gc_s: float = 600.0,
    ) -> None:
        self._config = config
        self._policies = policies
        self.flow_gc_s = flow_gc_s
        self.band_gc_s = band_gc_s
        self._bands: dict[int, Band] = {}
        for band_config in config.bands:
            assert band_config.priority is not None  # noqa: S101 - the config requires it
            self._bands[band_config.priority] = self._make(band_config, band_config.priority, now)
        self.ordered: tuple[Band, ...] = ()
        self.priorities: tuple[int, ...] = ()
        self._reorder()
        self.length = 0
        self.byte_size = 0

    def __iter__(self) -> Iterator[Band]:
        return iter(self.ordered)

    def band(self, priority: int, now: float) -> Band:
        band = self._bands.get(priority)
        if band is None:
            band = self._bands[priority] = self._make(self._config.default_band, priority, now)
            band.dynamic = True
            self._reorder()
        return band

    def fits(self, band: Band, size: int) -> bool:
        config = self._config
        if config.max_bytes > 0 and self.byte_size + size > config.max_bytes:
            return False
        if config.max_requests > 0 and self.length + 1 > config.max_requests:
            return False
        return band.fits(size)

    def added(self, band: Band, item: QueueItem) -> None:
        band.length += 1
        band.byte_size += item.size
        band.idle_since = None
        self.length += 1
        self.byte_size += item.size

    def removed(self, band: Band, item: QueueItem, now: float) -> None:
        band.length -= 1
        band.byte_size -= item.size
        self.length -= 1
        self.byte_size -= item.size
        if band.length == 0:
            band.idle_since = now

    def collect_garbage(self, now: float) -> None:
        """Drops flows and on-demand bands that have been empty long enough."""
        dropped = False
        for priority, band in list(self._bands.items()):
            for fairness_id, flow in list(band.flows.items()):
                if flow.idle_since is not None and now - flow.idle_since >= self.flow_gc_s:
                    del band.flows[fairness_id]
            idle = band.idle_since
            if (
                band.dynamic
                and not band.flows
                and idle is not None
                and now - idle >= self.band_gc_s
            ):
                del self._bands[priority]
                dropped = True
        if dropped:
            self._reorder()

    def _make(self, config: BandConfig, priority: int, now: float) -> Band:
        fairness: FairnessPolicy = self._policies[config.fairness_policy]
        return Band(
            priority, config.max_bytes, config.max_requests, fairness,
            self._policies[config.ordering_policy], dynamic=False,
            fairness_state=fairness.new_state(), idle_since=now,
        )  # fmt: skip

    def _reorder(self) -> None:
        self.ordered = tuple(sorted(self._bands.values(), key=lambda b: -b.priority))
        self.priorities = tuple(b.priority for b in self.ordered)
