"""The flow-control policy types in the registry table, and those every configuration has.

Each policy is a module of `igw.epp.flowcontrol.plugins`, named after its type. The defaults
(`fcfs-ordering-policy`, `global-strict-fairness-policy`, `static-usage-limit-policy`) are created
under their type names when a configuration does not declare them, so band templates and the
usage-limit reference can name them without a `plugins` entry, as upstream's.
"""

from __future__ import annotations

from typing import Any

from igw.epp.flowcontrol.plugins import (
    EdfOrderingPolicy,
    FcfsOrderingPolicy,
    GlobalStrictFairnessPolicy,
    RoundRobinFairnessPolicy,
    SloDeadlineOrderingPolicy,
    StaticUsageLimitPolicy,
    WeightedFairFairnessPolicy,
)

__all__ = ["ALWAYS_REGISTERED_POLICIES", "POLICY_TYPES"]

POLICY_TYPES: tuple[type[Any], ...] = (
    GlobalStrictFairnessPolicy,
    RoundRobinFairnessPolicy,
    WeightedFairFairnessPolicy,
    FcfsOrderingPolicy,
    EdfOrderingPolicy,
    SloDeadlineOrderingPolicy,
    StaticUsageLimitPolicy,
)
ALWAYS_REGISTERED_POLICIES = (
    FcfsOrderingPolicy.type_name,
    GlobalStrictFairnessPolicy.type_name,
    StaticUsageLimitPolicy.type_name,
)
