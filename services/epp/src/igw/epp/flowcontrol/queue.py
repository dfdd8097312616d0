"""One flow's queue: the requests of one fairness id in one priority band, in dispatch order.

A `FlowQueue` is a FIFO (a dict in insertion order: O(1) push, head and removal) when its
ordering policy follows arrival (`needs_heap` False), else a binary heap on the policy's key with
the item's sequence number as tie-break. A request leaving early (its TTL, its client gone) is
removed at once from the FIFO; from the heap it is marked and its count and bytes are given back
at once, the entry dropped when it surfaces or when such entries outnumber the live ones. Either
way `len()` and `byte_size` count only the live requests, which is what capacity and the queue
gauges read.

Only the dispatcher's event loop touches a queue: no locking.
"""

from __future__ import annotations

import asyncio
import heapq
from dataclasses import dataclass, field
from typing import Any

from igw.epp.endpoints import InferenceRequest
from igw.epp.flowcontrol.outcomes import Outcome
from igw.epp.framework.flowcontrol import OrderingPolicy

__all__ = ["FlowQueue", "QueueItem"]


@dataclass(slots=True, eq=False)
class QueueItem:
    """A request held by flow control until its outcome; implements `QueuedRequest`."""

    request: InferenceRequest
    priority: int
    fairness_id: str
    size: int
    enqueued_at: float
    ttl: float
    """Seconds it may wait (0: until its client goes away)."""
    seq: int
    labels: tuple[str, str, str, str, str]
    """The queue gauges' labels: fairness_id, priority, inference_pool, model, target model."""
    done: asyncio.Future[Outcome] | None = None
    queued: bool = False
    """In a queue (counted in its length and bytes) right now."""
    key: tuple[Any, ...] = field(default=())

    @property
    def deadline(self) -> float:
        """When its TTL runs out (the controller's clock); infinity without one."""
        return self.enqueued_at + self.ttl if self.ttl > 0 else float("inf")


class FlowQueue:
    """The queue of one flow (module docstring); implements `FlowView`."""

    __slots__ = ("_dead", "_fifo", "_heap", "_len", "byte_size", "fairness_id", "idle_since",
                 "ordering")  # fmt: skip

    def __init__(self, fairness_id: str, ordering: OrderingPolicy, now: float) -> None:
        self.fairness_id = fairness_id
        self.ordering = ordering
        self._fifo: dict[int, QueueItem] | None = None if ordering.needs_heap else {}
        self._heap: list[tuple[tuple[Any, ...], QueueItem]] = []
        self._dead = 0
        self._len = 0
        self.byte_size = 0
        self.idle_since: float | None = now
        """When it last became empty (None while it holds requests): for garbage collection."""

    def __len__(self) -> int:
        return self._len

    def push(self, item: QueueItem) -> None:
        item.key = (*self.ordering.sort_key(item), item.seq)
        if self._fifo is not None:
            self._fifo[item.seq] = item
        else:
            heapq.heappush(self._heap, (item.key, item))
        item.queued = True
        self._len += 1
        self.byte_size += item.size
        self.idle_since = None

    def head(self) -> QueueItem | None:
        if self._fifo is not None:
            return next(iter(self._fifo.values()), None)
        heap = self._heap
        while heap and not heap[0][1].queued:
            heapq.heappop(heap)
            self._dead -= 1
        return heap[0][1] if heap else None

    def head_key(self) -> tuple[Any, ...] | None:
        item = self.head()
        return None if item is None else item.key

    def pop(self, now: float) -> QueueItem | None:
        """Takes the head out (it dispatches)."""
        item = self.head()
        if item is None:
            return None
        if self._fifo is not None:
            del self._fifo[item.seq]
        else:
            heapq.heappop(self._heap)
        self._left(item, now)
        return item

    def remove(self, item: QueueItem, now: float) -> None:
        """Takes a request out wherever it is (TTL, client gone); a no-op if it is not queued."""
        if not item.queued:
            return
        if self._fifo is not None:
            del self._fifo[item.seq]
        else:
            self._dead += 1
            if self._dead > 64 and self._dead > self._len:
                live = [entry for entry in self._heap if entry[1].queued and entry[1] is not item]
                heapq.heapify(live)
                self._heap, self._dead = live, 0
        self._left(item, now)

    def _left(self, item: QueueItem, now: float) -> None:
        item.queued = False
        self._len -= 1
        self.byte_size -= item.size
        if self._len == 0:
            self.idle_since = now
