"""The `flowControl` section and the flow-control policy plugin types, validated only.

Flow control itself (queues, fairness, TTL) is a later issue: this module checks the section's
shape, quantities and policy references and resolves it into `FlowControlConfig`, which is
honoured only with the `flowControl` feature gate. The policy types are known by name so that
configs using them load; `static-usage-limit-policy` has its `threshold` parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import msgspec

from igw.epp.scheduling.plugins._params import ParameterlessPlugin, decode_params

__all__ = [
    "ALWAYS_REGISTERED_POLICIES",
    "POLICY_TYPES",
    "BandConfig",
    "FlowControlConfig",
    "FlowControlPolicy",
    "StaticUsageLimitPolicy",
]

DEFAULT_BAND_MAX_BYTES = 1_000_000_000


class FlowControlPolicy(ParameterlessPlugin):
    """A policy type known by name, without parameters."""

    type_name: ClassVar[str] = ""
    config_kind: ClassVar[str] = "flow-control-policy"
    policy_role: ClassVar[str] = ""
    """`fairness`, `ordering` or `usage-limit`: which band reference may name it."""


class GlobalStrictFairnessPolicy(FlowControlPolicy):
    type_name = "global-strict-fairness-policy"
    policy_role = "fairness"


class RoundRobinFairnessPolicy(FlowControlPolicy):
    type_name = "round-robin-fairness-policy"
    policy_role = "fairness"


class FcfsOrderingPolicy(FlowControlPolicy):
    type_name = "fcfs-ordering-policy"
    policy_role = "ordering"


class EdfOrderingPolicy(FlowControlPolicy):
    type_name = "edf-ordering-policy"
    policy_role = "ordering"


class StaticUsageLimitParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    threshold: float = 1.0


class StaticUsageLimitPolicy(FlowControlPolicy):
    type_name = "static-usage-limit-policy"
    policy_role = "usage-limit"

    def __init__(self, name: str, threshold: float = 1.0) -> None:
        super().__init__(name)
        if threshold <= 0:
            raise ValueError(f"threshold must be positive, got {threshold}")
        self.threshold = threshold

    @classmethod
    def from_config(
        cls,
        name: str,
        params: Mapping[str, Any],
        handle: object,  # noqa: ARG003 - the PluginHandle of the protocol; unused here
    ) -> Self:
        return cls(name, decode_params(params, StaticUsageLimitParams).threshold)


POLICY_TYPES: tuple[type[FlowControlPolicy], ...] = (
    GlobalStrictFairnessPolicy,
    RoundRobinFairnessPolicy,
    FcfsOrderingPolicy,
    EdfOrderingPolicy,
    StaticUsageLimitPolicy,
)
ALWAYS_REGISTERED_POLICIES = (
    FcfsOrderingPolicy.type_name,
    GlobalStrictFairnessPolicy.type_name,
    StaticUsageLimitPolicy.type_name,
)


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
