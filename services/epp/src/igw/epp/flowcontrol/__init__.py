"""Flow control (§5.4): requests wait in the gateway, by priority band and fairness flow, until
the pool has room for them.

`FlowControlConfig` is what the `flowControl` section resolves to; `FlowController` is the
`Admission` the EPP uses with the `flowControl` feature gate (`flow_controller` builds it from a
loaded configuration); the policies (fairness, ordering, usage limit) are plugins of
`igw.epp.flowcontrol.plugins`.
"""

from igw.epp.flowcontrol.assembly import flow_controller
from igw.epp.flowcontrol.config import DEFAULT_BAND_MAX_BYTES, BandConfig, FlowControlConfig
from igw.epp.flowcontrol.controller import FlowController
from igw.epp.flowcontrol.eviction import EvictionConfig, InFlight
from igw.epp.flowcontrol.metrics import FlowControlMetrics
from igw.epp.flowcontrol.outcomes import (
    EVICTED_BODY,
    FlowControlEvictedError,
    Outcome,
    outcome_error,
)
from igw.epp.flowcontrol.plugins import (
    EdfOrderingPolicy,
    FcfsOrderingPolicy,
    GlobalStrictFairnessPolicy,
    RoundRobinFairnessPolicy,
    SloDeadlineOrderingPolicy,
    StaticUsageLimitPolicy,
    WeightedFairFairnessPolicy,
)
from igw.epp.flowcontrol.policies import ALWAYS_REGISTERED_POLICIES, POLICY_TYPES

__all__ = [
    "ALWAYS_REGISTERED_POLICIES",
    "DEFAULT_BAND_MAX_BYTES",
    "EVICTED_BODY",
    "POLICY_TYPES",
    "BandConfig",
    "EdfOrderingPolicy",
    "EvictionConfig",
    "FcfsOrderingPolicy",
    "FlowControlConfig",
    "FlowControlEvictedError",
    "FlowControlMetrics",
    "FlowController",
    "GlobalStrictFairnessPolicy",
    "InFlight",
    "Outcome",
    "RoundRobinFairnessPolicy",
    "SloDeadlineOrderingPolicy",
    "StaticUsageLimitPolicy",
    "WeightedFairFairnessPolicy",
    "flow_controller",
    "outcome_error",
]
