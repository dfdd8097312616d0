"""In-flight truth: each endpoint's scraped queue, corrected by what the EPP dispatched since.

A scrape is a photograph up to 50 ms old; a burst of requests inside one interval would all see
the same short queue and herd onto one pod. The ledger keeps, per endpoint, the requests this EPP
sent there in dispatch order (the model server's waiting queue is FIFO) and reconciles them with
each new scrape (`Metrics.updated_at` moved):

* a request sent at least `lag_s` before the scrape counts as arrived (Envoy's hop); of the
  arrived ones, all but the last `waiting` have left the server's waiting queue: they are popped
  and each becomes a `Wait` observation (how long it waited, how much work was ahead of it when
  it was sent), which is what the speed learner fits. It left at some time between the previous
  reconciliation (or its dispatch) and this scrape, taken as the midpoint; when that interval is
  longer than `max_window_s` (no request was placed for a while, so no scrape was reconciled)
  the midpoint says nothing and no `Wait` is made: a request that left at once after a 5 s lull
  would otherwise count as a 2.5 s wait, and one such wait made a fast pod look ten times slower
  than it was;
* the departed requests' prefill is not done when they leave: their tokens join the endpoint's
  started work, which drains at the endpoint's learned speed (`seconds_per_token`, the caller's);
* requests sent after the scrape (`dispatched`) are added to its counts until the next one;
* waiting requests the ledger did not send (another EPP replica's, or sent before a restart)
  count as `mean_tokens` each, the running mean of what it did send (before it sent anything:
  the caller's guess, the size of the request being placed).

Nothing here depends on seeing a response end, so the lean response mode (which stops reading at
the response headers) keeps exact accounting. A request the server never received (the client
left) is matched away by the next scrape's lower count, or dropped after `expiry_s`. Requests the
server received from elsewhere only make `waiting` larger than the ledger's share: no departure is
inferred until the count falls.

Owned by one plugin instance; only the event loop touches it. `on_dispatch`, when set, hears of
each `dispatch` the plugin records (`igw.epp.workers` replays them in the other processes by
calling `dispatch` there, which does not call it back).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from igw.epp.endpoints import EndpointState
from igw.epp.scheduling.attributes import DispatchedLoad

__all__ = ["UNTIMED", "DispatchLedger", "Wait"]

UNTIMED = -1
"""`ahead` for a request whose wait says nothing of the endpoint's prefill speed (it waited for a
LoRA adapter to load or for a busy adapter slot): it is accounted for, but yields no `Wait`."""

_MEAN_WEIGHT = 0.05


@dataclass(frozen=True, slots=True)
class Wait:
    """One request's observed stay in an endpoint's waiting queue."""

    seconds: float
    ahead_tokens: int
    """The work the caller said was ahead of the request when it was sent (`dispatch`)."""


@dataclass(slots=True)
class _Sent:
    at: float
    tokens: int
    ahead: int


@dataclass(slots=True)
class _Endpoint:
    queue: collections.deque[_Sent] = field(default_factory=collections.deque)
    """Sent here and not yet seen leaving the waiting queue, oldest first."""
    queued_tokens: int = 0
    scrape_at: float = 0.0
    started: float = 0.0
    """Prefill tokens of departed requests not yet computed, as of `started_at`."""
    started_at: float = 0.0
    counted_for: float = -math.inf
    """The scrape (`updated_at`) `after` counts against: `load` counts the requests sent after
    a scrape once, and each dispatch after that adds one, so a stale scrape costs no scan of
    every request sent since."""
    after: int = 0

    def drain(self, now: float, seconds_per_token: float) -> float:
        """The started work left at `now`."""
        if self.started > 0 and now > self.started_at:
            self.started = max(0.0, self.started - (now - self.started_at) / seconds_per_token)
        self.started_at = max(self.started_at, now)
        return self.started


class DispatchLedger:
    """See the module docstring."""

    def __init__(
        self, *, lag_s: float = 0.005, expiry_s: float = 60.0, max_window_s: float = 0.25
    ) -> None:
        if lag_s < 0 or expiry_s <= 0 or max_window_s <= 0:
            raise ValueError("lag must be >= 0, expiry and max window > 0")
        self.lag_s = lag_s
        self.expiry_s = expiry_s
        self.max_window_s = max_window_s
        self._endpoints: dict[str, _Endpoint] = {}
        self.mean_tokens: float | None = None
        self.on_dispatch: Callable[[str, float, int, int], None] | None = None
        """Called by the owning plugin after a local `dispatch` (module docstring)."""

    def dispatch(self, endpoint: str, at: float, tokens: int, ahead: int) -> None:
        """Records a request of `tokens` uncached prompt tokens sent to `endpoint` with `ahead`
        tokens of work before it there (what its `Wait` will be measured against)."""
        self.replay(endpoint, at, tokens, ahead)
        if self.on_dispatch is not None:
            self.on_dispatch(endpoint, at, tokens, ahead)

    def replay(self, endpoint: str, at: float, tokens: int, ahead: int) -> None:
        """`dispatch` without telling `on_dispatch`: another process's dispatch, applied here."""
        entry = self._endpoints.get(endpoint)
        if entry is None:
            entry = self._endpoints[endpoint] = _Endpoint()
        mean = self.mean_tokens
        self.mean_tokens = tokens if mean is None else mean + _MEAN_WEIGHT * (tokens - mean)
        entry.queue.append(_Sent(at, tokens, ahead))
        entry.queued_tokens += tokens
        if at > entry.counted_for - self.lag_s:
            entry.after += 1

    def has_new_scrape(self, state: EndpointState) -> bool:
        """Whether `reconcile` has anything to match: the endpoint has a scrape not yet seen."""
        entry = self._endpoints.get(state.endpoint.name)
        return entry is not None and state.metrics.updated_at > entry.scrape_at

    def reconcile(self, state: EndpointState, now: float, seconds_per_token: float) -> list[Wait]:
        """Matches a new scrape against the dispatch order; the waits it reveals (oldest first).

        A scrape already reconciled (same `updated_at`) reveals nothing.
        """
        entry = self._endpoints.get(state.endpoint.name)
        metrics = state.metrics
        if entry is None or metrics.updated_at <= entry.scrape_at:
            return []
        previous, entry.scrape_at = entry.scrape_at, metrics.updated_at
        queue = entry.queue
        while queue and now - queue[0].at > self.expiry_s:
            entry.queued_tokens -= queue.popleft().tokens
        seen_until = metrics.updated_at - self.lag_s
        arrived = 0
        for sent in queue:
            if sent.at > seen_until:
                break
            arrived += 1
        waits: list[Wait] = []
        departed = max(0, arrived - metrics.waiting)
        if departed:
            entry.drain(now, seconds_per_token)
        for _ in range(departed):
            sent = queue.popleft()
            entry.queued_tokens -= sent.tokens
            entry.started += sent.tokens
            # It left between the previous scrape (or its dispatch) and this one: the midpoint.
            since = max(previous, sent.at)
            if sent.ahead != UNTIMED and metrics.updated_at - since <= self.max_window_s:
                waits.append(Wait(max(0.0, (since + metrics.updated_at) / 2 - sent.at), sent.ahead))
        return waits

    def load(
        self, state: EndpointState, now: float, seconds_per_token: float, guess: int = 0
    ) -> DispatchedLoad:
        """The endpoint's scraped counts plus the requests sent since that scrape; `guess` is
        the size of a waiting request the ledger did not send, until it has sent any."""
        metrics = state.metrics
        mean = guess if self.mean_tokens is None else self.mean_tokens
        entry = self._endpoints.get(state.endpoint.name)
        if entry is None:
            return DispatchedLoad(
                metrics.waiting, metrics.running, 0, round(metrics.waiting * mean)
            )
        if entry.counted_for != metrics.updated_at:  # a scrape not counted against yet
            seen_until = metrics.updated_at - self.lag_s
            dispatched = 0
            for sent in reversed(entry.queue):
                if sent.at <= seen_until:
                    break
                dispatched += 1
            entry.counted_for, entry.after = metrics.updated_at, dispatched
        dispatched = entry.after
        foreign = max(0, metrics.waiting - (len(entry.queue) - dispatched))
        queued = entry.queued_tokens + round(foreign * mean)
        started = round(entry.drain(now, seconds_per_token)) if entry.started > 0 else 0
        return DispatchedLoad(metrics.waiting, metrics.running, dispatched, queued, started)
