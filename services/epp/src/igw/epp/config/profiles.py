"""Named configurations igw ships beside upstream's default (`igw-epp --config-profile NAME`).

Upstream's default profile (`DEFAULT_CONFIG`) stays the default, so drop-in users get the same
picks; these are opt-in. Each is an ordinary `EndpointPickerConfig`: print it, copy it, adapt it.

* `learned-latency`: upstream's default profile (queue 2, KV-cache utilisation 2, prefix cache
  3) plus the TTFT predicted for this request (`predicted-ttft-scorer`, weight 4): each
  endpoint's queue corrected by what the EPP sent since the last scrape, its prefill speed
  learned online from how long requests waited there, and the load it is being given
  (`online-latency-producer`). The default's terms keep its prefix affinity and spread; the
  prediction moves work off slow, saturating or adapter-less pods.
"""

from __future__ import annotations

from collections.abc import Mapping

from igw.epp.config.loader import DEFAULT_CONFIG

__all__ = ["LEARNED_LATENCY", "PROFILES"]


def _insert(config: str, after: str, lines: str) -> str:
    """`config` with `lines` inserted after its (one) line `after`."""
    if config.count(after) != 1:
        raise ValueError(f"expected one line {after!r} in the base configuration")
    return config.replace(after, after + lines)


LEARNED_LATENCY = _insert(
    _insert(
        DEFAULT_CONFIG,
        "- type: prefix-cache-scorer\n",
        "- type: online-latency-producer\n- type: predicted-ttft-scorer\n",
    ),
    "  - {pluginRef: prefix-cache-scorer, weight: 3}\n",
    "  - {pluginRef: predicted-ttft-scorer, weight: 4}\n",
)
"""Upstream's default configuration (`DEFAULT_CONFIG`) plus the predicted-TTFT term (module
docstring), built from it so that the two cannot drift apart."""

PROFILES: Mapping[str, str] = {"learned-latency": LEARNED_LATENCY}
"""Profile name -> its EndpointPickerConfig YAML."""
