"""The flow-control kinds (§5.4): fairness, ordering and usage-limit policies.

Flow control holds requests in queues: one per flow (fairness id) inside one priority band per
priority. Each dispatch takes the highest band the usage limit lets through; the band's fairness
policy picks a flow, and the flow's head (by the band's ordering policy) goes. The contracts:

* `OrderingPolicy.sort_key(item)`: a tuple; the smaller key dispatches first. Ties are broken by
  arrival order (the framework appends the item's sequence number), so a key need not be unique.
  `needs_heap` says whether the queue must be a heap: False only when the key grows with arrival
  (first come, first served), which a FIFO queue already gives.
* `FairnessPolicy.pick_flow(flows, state)`: the fairness id of a non-empty flow in `flows`, or
  None when every flow is empty. `state` is what `new_state()` made for this band, kept between
  calls; a pick is always followed by the dispatch of that flow's head (the caller checks the
  usage limit first), so a policy may account for the dispatch when it picks.
* `UsageLimitPolicy.compute_limit(saturation, priorities)`: one ceiling per priority (highest
  first, as given). A band whose ceiling is at or below the pool's saturation stops the whole
  dispatch cycle (head-of-line blocking, as upstream).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

from igw.epp.endpoints import InferenceRequest
from igw.epp.framework.plugin import Plugin

__all__ = [
    "FairnessPolicy",
    "FlowView",
    "OrderingPolicy",
    "QueuedRequest",
    "UsageLimitPolicy",
]


class QueuedRequest(Protocol):
    """A request waiting in a flow, as the policies see it; times are the controller's clock."""

    @property
    def request(self) -> InferenceRequest: ...
    @property
    def enqueued_at(self) -> float: ...
    @property
    def ttl(self) -> float:
        """Seconds it may wait; 0 = no limit."""
        ...

    @property
    def size(self) -> int:
        """Bytes (the request body)."""
        ...


class FlowView(Protocol):
    """One flow's queue, as a fairness policy sees it."""

    def __len__(self) -> int: ...
    @property
    def byte_size(self) -> int: ...
    def head(self) -> QueuedRequest | None:
        """The request the ordering policy dispatches next; None when empty."""
        ...

    def head_key(self) -> tuple[Any, ...] | None:
        """The head's ordering key (with its tie-break), to compare heads across flows."""
        ...


class OrderingPolicy(Plugin, Protocol):
    """Orders the requests queued in one flow (module docstring)."""

    needs_heap: ClassVar[bool]

    def sort_key(self, item: QueuedRequest) -> tuple[float, ...]: ...


class FairnessPolicy(Plugin, Protocol):
    """Chooses which flow of a priority band dispatches next (module docstring)."""

    def new_state(self) -> Any: ...

    def pick_flow(self, flows: Mapping[str, FlowView], state: Any) -> str | None: ...


class UsageLimitPolicy(Plugin, Protocol):
    """Caps how saturated the pool may be before a band's requests wait (module docstring)."""

    def compute_limit(self, saturation: float, priorities: Sequence[int]) -> Sequence[float]: ...
