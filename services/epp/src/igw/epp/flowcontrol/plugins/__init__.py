"""The flow-control policies, one module per registered type (§5.4, plus weighted fairness)."""

from igw.epp.flowcontrol.plugins.edf_ordering_policy import EdfOrderingPolicy
from igw.epp.flowcontrol.plugins.fcfs_ordering_policy import FcfsOrderingPolicy
from igw.epp.flowcontrol.plugins.global_strict_fairness_policy import GlobalStrictFairnessPolicy
from igw.epp.flowcontrol.plugins.round_robin_fairness_policy import RoundRobinFairnessPolicy
from igw.epp.flowcontrol.plugins.slo_deadline_ordering_policy import (
    SLO_TTFT_HEADER,
    SloDeadlineOrderingPolicy,
)
from igw.epp.flowcontrol.plugins.static_usage_limit_policy import StaticUsageLimitPolicy
from igw.epp.flowcontrol.plugins.weighted_fair_fairness_policy import WeightedFairFairnessPolicy

__all__ = [
    "SLO_TTFT_HEADER",
    "EdfOrderingPolicy",
    "FcfsOrderingPolicy",
    "GlobalStrictFairnessPolicy",
    "RoundRobinFairnessPolicy",
    "SloDeadlineOrderingPolicy",
    "StaticUsageLimitPolicy",
    "WeightedFairFairnessPolicy",
]
