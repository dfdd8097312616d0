"""The flow-control policy plugin types, known by name and validated only.

Flow control itself (queues, fairness, TTL) is a later issue. The policy types are registered so
that configurations using upstream's policies load, each declaring its kind (fairness, ordering,
usage limit) for the `flowControl` section's references to be checked against;
`static-usage-limit-policy` has its `threshold` parameter. They get a module each when they gain
behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from igw.epp.framework.kinds import FAIRNESS_POLICY, ORDERING_POLICY, USAGE_LIMIT_POLICY
from igw.epp.framework.params import ParameterlessPlugin, Params, decode_params

__all__ = [
    "ALWAYS_REGISTERED_POLICIES",
    "POLICY_TYPES",
    "EdfOrderingPolicy",
    "FcfsOrderingPolicy",
    "FlowControlPolicy",
    "GlobalStrictFairnessPolicy",
    "RoundRobinFairnessPolicy",
    "StaticUsageLimitPolicy",
]


class FlowControlPolicy(ParameterlessPlugin):
    """A policy type known by name, without parameters."""

    type_name: ClassVar[str] = ""
    declared_kinds: ClassVar[tuple[str, ...]] = ()


class GlobalStrictFairnessPolicy(FlowControlPolicy):
    type_name = "global-strict-fairness-policy"
    declared_kinds = (FAIRNESS_POLICY.name,)


class RoundRobinFairnessPolicy(FlowControlPolicy):
    type_name = "round-robin-fairness-policy"
    declared_kinds = (FAIRNESS_POLICY.name,)


class FcfsOrderingPolicy(FlowControlPolicy):
    type_name = "fcfs-ordering-policy"
    declared_kinds = (ORDERING_POLICY.name,)


class EdfOrderingPolicy(FlowControlPolicy):
    type_name = "edf-ordering-policy"
    declared_kinds = (ORDERING_POLICY.name,)


class StaticUsageLimitParams(Params, frozen=True):
    threshold: float = 1.0


class StaticUsageLimitPolicy(FlowControlPolicy):
    type_name = "static-usage-limit-policy"
    declared_kinds = (USAGE_LIMIT_POLICY.name,)

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
