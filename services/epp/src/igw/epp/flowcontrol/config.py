"""The `flowControl` section as the EPP will honour it: priority bands, limits and policies.

`igw.epp.config` validates the section (shapes, quantities, policy references by kind) and
resolves it into `FlowControlConfig`, which is honoured only with the `flowControl` feature gate.
`eviction` is igw's (upstream has the plugins but never wires them).
"""

from __future__ import annotations

from dataclasses import dataclass

from igw.epp.flowcontrol.eviction import EvictionConfig
from igw.epp.flowcontrol.plugins import (
    FcfsOrderingPolicy,
    GlobalStrictFairnessPolicy,
    StaticUsageLimitPolicy,
)

__all__ = ["DEFAULT_BAND_MAX_BYTES", "BandConfig", "FlowControlConfig"]

DEFAULT_BAND_MAX_BYTES = 1_000_000_000


@dataclass(frozen=True, slots=True)
class BandConfig:
    priority: int | None
    """None for the default band template."""
    max_bytes: int = DEFAULT_BAND_MAX_BYTES
    max_requests: int = 0
    """0 = unlimited."""
    fairness_policy: str = GlobalStrictFairnessPolicy.type_name
    ordering_policy: str = FcfsOrderingPolicy.type_name


@dataclass(frozen=True, slots=True)
class FlowControlConfig:
    enabled: bool
    """Whether the `flowControl` feature gate is on; the section is ignored otherwise."""
    max_bytes: int = 0
    max_requests: int = 0
    default_request_ttl: float = 0.0
    """Seconds; 0 = wait until the client goes away."""
    default_band: BandConfig = BandConfig(None)
    bands: tuple[BandConfig, ...] = ()
    usage_limit_policy: str = StaticUsageLimitPolicy.type_name
    eviction: EvictionConfig | None = None
    """igw: evict in-flight sheddable requests for a starving band (None: never)."""
