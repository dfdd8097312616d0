"""The per-endpoint attributes built-in producers write and built-in plugins consume.

Each key's value type is part of the contract between a producer (`produces`) and its consumers
(`consumes`); the config loader auto-creates the default producer of any key a configured plugin
consumes but nobody produces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from igw.epp.framework.cycle_state import AttributeKey

__all__ = [
    "DISPATCHED_LOAD",
    "INFLIGHT_LOAD",
    "PREDICTED_TTFT",
    "PREFIX_CACHE_MATCH",
    "DispatchedLoad",
    "InFlightLoad",
    "PrefixCacheMatchInfo",
    "TtftPrediction",
]


@dataclass(frozen=True, slots=True)
class PrefixCacheMatchInfo:
    """How many of the request's prefix blocks an endpoint is believed to hold (upstream's name)."""

    matched_blocks: int
    total_blocks: int

    @property
    def ratio(self) -> float:
        return self.matched_blocks / self.total_blocks if self.total_blocks > 0 else 0.0


@dataclass(frozen=True, slots=True)
class InFlightLoad:
    """Requests sent to an endpoint and not yet complete, and their estimated tokens."""

    requests: int
    tokens: int


class DispatchedLoad(NamedTuple):
    """An endpoint's queue as the last scrape saw it, corrected by what the EPP sent since.

    `dispatched` requests went out after the scrape (its counts cannot hold them yet);
    `queued_tokens` are the uncached prompt tokens of this EPP's requests believed still
    waiting there (the scrape's waiting count matched against the EPP's own dispatch order);
    `started_tokens` those of requests that left the waiting queue and whose prefill is not
    done yet at the endpoint's learned speed.
    """

    waiting: int
    running: int
    dispatched: int
    queued_tokens: int
    started_tokens: int = 0

    @property
    def ahead_tokens(self) -> int:
        """Prefill work a request sent now would wait for."""
        return self.queued_tokens + self.started_tokens

    @property
    def requests(self) -> int:
        """Every request believed at the endpoint or on its way: waiting, running, just sent."""
        return self.waiting + self.running + self.dispatched


class TtftPrediction(NamedTuple):
    """An endpoint's predicted time to first token for this request, and its parts.

    A named tuple, as `DispatchedLoad`: immutable like the frozen dataclasses here, and built
    per candidate per request, where a frozen dataclass costs 4x as much to construct."""

    ttft_s: float
    seconds_per_token: float
    """The endpoint's learned prefill speed (seconds per token of queued work)."""
    queued_tokens: int
    """Work ahead of this request there (`DispatchedLoad.ahead_tokens`)."""
    uncached_tokens: int
    """This request's prompt tokens the endpoint is not believed to hold in its prefix cache."""
    dispatched: int
    """The in-flight correction: requests sent since the endpoint's last scrape."""
    adapter: str = "none"
    """The request's LoRA adapter there: `resident`, `load` (a load is counted in the
    uncached tokens), `evict` (a load that evicts the only copy among the candidates of another
    adapter: its reload is counted too), `blocked` (every slot busy: a wait is counted too) or
    `none`."""
    delay_s: float = 0.0
    """What sending it there costs the requests that will arrive behind it: its own prefill
    time `t` there, times the endpoint's recent arrivals per second, times `t / 2`, weighted by
    `delayCostWeight`. Ranked on (`predicted-ttft-scorer`), not part of `ttft_s`."""

    @property
    def cost_s(self) -> float:
        """What `predicted-ttft-scorer` ranks by: the TTFT and the delay it causes."""
        return self.ttft_s + self.delay_s


PREFIX_CACHE_MATCH: AttributeKey[PrefixCacheMatchInfo] = AttributeKey("PrefixCacheMatchInfo")
"""Written only for endpoints that hold at least one block: absent means no match."""

INFLIGHT_LOAD: AttributeKey[InFlightLoad] = AttributeKey("InFlightLoad")
"""Absent for an endpoint with nothing in flight."""

DISPATCHED_LOAD: AttributeKey[DispatchedLoad] = AttributeKey("DispatchedLoad")
"""Written for every candidate by `online-latency-producer`."""

PREDICTED_TTFT: AttributeKey[TtftPrediction] = AttributeKey("PredictedTTFT")
"""Written for every candidate by `online-latency-producer`."""
