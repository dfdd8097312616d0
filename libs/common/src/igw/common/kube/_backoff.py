"""Exponential backoff with jitter for retrying a Kubernetes API that is failing.

The n-th consecutive failure waits a random time in `[d/2, d]` with `d = min(max, initial * 2**n)`:
bounded by `max_s`, growing while the failure lasts, and spread out so that the replicas of a
service do not come back to a restarted API server in lockstep.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """The delays before successive retries; `reset()` after something worked."""

    def __init__(
        self, initial_s: float, max_s: float, *, rng: Callable[[], float] = random.random
    ) -> None:
        if not 0 < initial_s <= max_s:
            raise ValueError(f"backoff needs 0 < initial ({initial_s}) <= max ({max_s})")
        self._initial_s = initial_s
        self._max_s = max_s
        self._rng = rng  # uniform in [0, 1); tests pass a fixed one
        self._failures = 0

    def next_delay(self) -> float:
        """The delay before the next retry; each call counts one more failure."""
        # The exponent is capped so a long outage cannot overflow the float.
        ceiling = min(self._max_s, self._initial_s * 2.0 ** min(self._failures, 64))
        self._failures += 1
        return ceiling / 2 + self._rng() * ceiling / 2

    def reset(self) -> None:
        self._failures = 0
