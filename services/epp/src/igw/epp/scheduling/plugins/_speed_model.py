"""Each endpoint's prefill speed, learned online from how long its requests waited.

The model: a model server starts new requests only between batch steps, and takes every waiting
request the step's token budget allows. So a request sent to an endpoint waits for the step
under way there, not for the requests queued ahead of it (they start with it): it waits
`s x (wait_tokens + ahead)` seconds, where `ahead` is the prefill work already started there
and not done (`DispatchedLoad.started_tokens`), `wait_tokens` a constant for the step's fixed
costs, and `s` that endpoint's seconds per token of prefill work. A slow or busy pod has a
larger `s`; so does one whose steps are long because its batch is big. Its first token then
comes when the step it starts in ends, which `predict` counts as `s x (step_tokens + ahead +
own)`, `ahead` there being all the work queued before it.

`s` is a ratio estimator, `sum(wait) / sum(wait_tokens + ahead)`, over observations that fade
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
        wait_tokens: int = 128,
        half_life_s: float = 10.0,
        prior_tokens: float = 512.0,
    ) -> None:
        if initial <= 0 or min(step_tokens, wait_tokens) < 0:
            raise ValueError("speed model settings must be positive")
        if half_life_s <= 0 or prior_tokens <= 0:
            raise ValueError("speed model settings must be positive")
        self.initial = initial
        self.step_tokens = step_tokens
        self.wait_tokens = wait_tokens
        self.half_life_s = half_life_s
        self.prior_tokens = prior_tokens
        self._fits: dict[str, _Fit] = {}
        self._pool: float | None = None
        self._speeds: dict[str, float] | None = None

    def observe(self, endpoint: str, seconds: float, ahead_tokens: int, now: float) -> None:
        """One request waited `seconds` at `endpoint` behind `ahead_tokens` of started work."""
        fit = self._fits.get(endpoint)
        if fit is None:
            fit = self._fits[endpoint] = _Fit(at=now)
        fade = 0.5 ** (max(0.0, now - fit.at) / self.half_life_s)
        fit.work = fit.work * fade + self.wait_tokens + max(0, ahead_tokens)
        fit.seconds = fit.seconds * fade + max(0.0, seconds)
        fit.at = now
        self._pool = self._speeds = None

    def pool(self) -> float:
        """The prior: the median fitted speed of the pool, `initial` before any fit."""
        pool = self._pool
        if pool is None:
            fitted = [f.seconds / f.work for f in self._fits.values() if f.work > 0]
            pool = self._pool = statistics.median(fitted) if fitted else self.initial
        return pool

    def speeds(self) -> dict[str, float]:
        """Every fitted endpoint's `seconds_per_token`, kept until the next `observe` (the
        picker's hot path: one look-up per candidate); an endpoint not in it is at `pool()`."""
        speeds = self._speeds
        if speeds is None:
            speeds = self._speeds = {name: self.seconds_per_token(name) for name in self._fits}
        return speeds

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
