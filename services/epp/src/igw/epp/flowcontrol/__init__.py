"""Flow control (§5): the `flowControl` section and its policy plugins, validated only so far.

`FlowControlConfig` is what the section resolves to; the policies (`fairness`, `ordering`,
`usage-limit` kinds) are registered so upstream's configurations load.
"""

from igw.epp.flowcontrol.config import DEFAULT_BAND_MAX_BYTES, BandConfig, FlowControlConfig
from igw.epp.flowcontrol.policies import (
    ALWAYS_REGISTERED_POLICIES,
    POLICY_TYPES,
    EdfOrderingPolicy,
    FcfsOrderingPolicy,
    FlowControlPolicy,
    GlobalStrictFairnessPolicy,
    RoundRobinFairnessPolicy,
    StaticUsageLimitPolicy,
)

__all__ = [
    "ALWAYS_REGISTERED_POLICIES",
    "DEFAULT_BAND_MAX_BYTES",
    "POLICY_TYPES",
    "BandConfig",
    "EdfOrderingPolicy",
    "FcfsOrderingPolicy",
    "FlowControlConfig",
    "FlowControlPolicy",
    "GlobalStrictFairnessPolicy",
    "RoundRobinFairnessPolicy",
    "StaticUsageLimitPolicy",
]
