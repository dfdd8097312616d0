"""The per-endpoint attributes built-in producers write and built-in plugins consume.

Each key's value type is part of the contract between a producer (`produces`) and its consumers
(`consumes`); the config loader auto-creates the default producer of any key a configured plugin
consumes but nobody produces.
"""

from __future__ import annotations

from dataclasses import dataclass

from igw.epp.framework.cycle_state import AttributeKey

__all__ = ["INFLIGHT_LOAD", "PREFIX_CACHE_MATCH", "InFlightLoad", "PrefixCacheMatchInfo"]


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


PREFIX_CACHE_MATCH: AttributeKey[PrefixCacheMatchInfo] = AttributeKey("PrefixCacheMatchInfo")
"""Written only for endpoints that hold at least one block: absent means no match."""

INFLIGHT_LOAD: AttributeKey[InFlightLoad] = AttributeKey("InFlightLoad")
"""Absent for an endpoint with nothing in flight."""
