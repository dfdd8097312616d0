"""Each endpoint's prefill speed, learned online from how long its requests waited.

The model: a request sent to an endpoint with `ahead` uncached prompt tokens queued there waits
`s x (step_tokens + ahead)` seconds before the server starts it, where `s` is that endpoint's
seconds per token of prefill work and `step_tokens` stands for the batch step already running
when it arrives (a model server starts new requests only between steps). A slow or busy pod has
a larger `s`; so does one whose steps are long because its batch is big.

`s` is a ratio estimator, `sum(wait) / sum(step_tokens + ahead)`, over observations that fade
with a half-life of `half_life_s` (so a pod whose speed changes is re-learned within a few
half-lives), blended with a prior worth `prior_tokens` of work: the median of the pool's fitted
endpoints, or `initial` before any is fitted. A new pod therefore starts at the pool's speed.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

__all__ = ["SpeedModel"]


@dataclass(slots=True)
class _Fit:
    work: float = 0.0
    seconds: float = 0.0
    at: float = 0.0


class SpeedModel:
    """See the module docstring."""

    def __init__(
        self,
        *,
        initial: float = 0.0005,
        step_tokens: int = 256,
        half_life_s: float = 4.0,
        prior_tokens: float = 512.0,
    ) -> None:
        if initial <= 0 or step_tokens < 0 or half_life_s <= 0 or prior_tokens <= 0:
            raise ValueError("speed model settings must be positive")
        self.initial = initial
        self.step_tokens = step_tokens
        self.half_life_s = half_life_s
        self.prior_tokens = prior_tokens
        self._fits: dict[str, _Fit] = {}
        self._pool: float | None = None

    def observe(self, endpoint: str, seconds: float, ahead_tokens: int, now: float) -> None:
        """One request waited `seconds` at `endpoint` behind `ahead_tokens` of work."""
        fit = self._fits.get(endpoint)
        if fit is None:
            fit = self._fits[endpoint] = _Fit(at=now)
        fade = 0.5 ** (max(0.0, now - fit.at) / self.half_life_s)
        fit.work = fit.work * fade + self.step_tokens + max(0, ahead_tokens)
        fit.seconds = fit.seconds * fade + max(0.0, seconds)
        fit.at = now
        self._pool = None

    def pool(self) -> float:
        """The prior: the median fitted speed of the pool, `initial` before any fit."""
        pool = self._pool
        if pool is None:
            fitted = [f.seconds / f.work for f in self._fits.values() if f.work > 0]
            pool = self._pool = statistics.median(fitted) if fitted else self.initial
        return pool

    def seconds_per_token(self, endpoint: str) -> float:
        """The endpoint's learned speed, pulled toward the pool's by the prior."""
        prior = self.pool()
        fit = self._fits.get(endpoint)
        if fit is None:
            return prior
        weight = self.prior_tokens
        return (fit.seconds + prior * weight) / (fit.work + weight)

    def predict(self, endpoint: str, queued_tokens: int, uncached_tokens: int) -> float:
        """Seconds to this request's first token: the step under way, the queue, its prefill."""
        work = self.step_tokens + max(0, queued_tokens) + max(0, uncached_tokens)
        return self.seconds_per_token(endpoint) * work
