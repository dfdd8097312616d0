"""The prefill work each endpoint is being given per second, from what this EPP dispatched.

A pod that receives prefill work at a rate `r` tokens per second while computing a token in `s`
seconds is busy a share `rho = r x s` of the time with it. Its queue, and so the TTFT of the next
request, grows like `1 / (1 - rho)` (queueing theory's M/G/1 shape) well before the scraped queue
shows it: 50 ms scrapes of a pod that admits every waiting request at the next batch step see a
short queue right up to saturation. `online-latency-producer` divides its prediction by
`1 - rho` (capped at `max_share`), so a hot pod holding a prefix stops drawing every request of
its group once it nears saturation, and a cached prefix still wins while the pod has headroom.

It also counts the requests sent (`requests_per_second`): a request whose prefill takes `t`
seconds there delays each request arriving meanwhile by about `t / 2`, so at `lambda` arrivals a
second it costs the others about `lambda x t^2 / 2` (what `online-latency-producer` adds to its
ranking as `delayCostWeight`): a long prompt goes where few requests would queue behind it.

Both rates are exponentially decayed sums (time constant `window_s`), divided by the window.
Owned by one plugin instance; only the event loop touches it.
"""

from __future__ import annotations

import math

__all__ = ["WorkRate"]


class WorkRate:
    """See the module docstring."""

    def __init__(self, *, window_s: float = 2.0, max_share: float = 0.9) -> None:
        if window_s <= 0 or not 0.0 <= max_share < 1.0:
            raise ValueError("window must be > 0 and max_share within [0, 1)")
        self.window_s = window_s
        self.max_share = max_share
        self._sums: dict[str, tuple[float, float, float]] = {}
        """Endpoint -> (decayed tokens, decayed requests, as of when)."""

    def add(self, endpoint: str, tokens: float, now: float) -> None:
        """A request of `tokens` of prefill work sent to `endpoint` at `now`."""
        total, count, at = self._sums.get(endpoint, (0.0, 0.0, now))
        fade = math.exp(-max(0.0, now - at) / self.window_s)
        self._sums[endpoint] = (total * fade + max(0.0, tokens), count * fade + 1.0, max(at, now))

    def tokens_per_second(self, endpoint: str, now: float) -> float:
        total, _, at = self._sums.get(endpoint, (0.0, 0.0, now))
        return self._decay(total, now - at) / self.window_s

    def requests_per_second(self, endpoint: str, now: float) -> float:
        _, count, at = self._sums.get(endpoint, (0.0, 0.0, now))
        return self._decay(count, now - at) / self.window_s

    def slowdown(self, endpoint: str, now: float, seconds_per_token: float) -> float:
        """`1 / (1 - rho)`: how much longer work waits there than on an idle pod."""
        return self.rates(endpoint, now, seconds_per_token)[0]

    def rates(self, endpoint: str, now: float, seconds_per_token: float) -> tuple[float, float]:
        """(`slowdown`, `requests_per_second`) in one look-up: the picker's hot path."""
        total, count, at = self._sums.get(endpoint, (0.0, 0.0, now))
        per_second = math.exp(-max(0.0, now - at) / self.window_s) / self.window_s
        share = min(self.max_share, total * per_second * seconds_per_token)
        return 1.0 / (1.0 - share), count * per_second

    def _decay(self, total: float, elapsed: float) -> float:
        return total * math.exp(-max(0.0, elapsed) / self.window_s)
