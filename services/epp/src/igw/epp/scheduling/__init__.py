"""The scheduler framework (§3.2): plugin contracts, cycle state, profiles and the cycle itself.

    Scheduler.schedule(request, endpoints)          one cycle, timed end to end
      ProfileHandler.pick_profiles  -> names        repeated until it answers none
        SchedulerProfile.run                        filters -> weighted scorers -> picker
      ProfileHandler.process_results -> SchedulingResult

`RequestControl` runs the hooks around a cycle (PrepareData, Admit, PreRequest, the response
plugins, response completion); `admission` holds the legacy shedding rule. Plugins live in
`.plugins`, one module per registered type; the registry table is `igw.epp.config.builtin`.
"""

from igw.epp.scheduling.admission import SHED_MESSAGE, Admission, LegacyAdmission, admit
from igw.epp.scheduling.attributes import (
    INFLIGHT_LOAD,
    PREFIX_CACHE_MATCH,
    InFlightLoad,
    PrefixCacheMatchInfo,
)
from igw.epp.scheduling.contracts import (
    KIND_METHODS,
    Admitter,
    DataProducer,
    Filter,
    Picker,
    Plugin,
    PreRequest,
    ProfileHandler,
    ResponseBodyProcessor,
    ResponseComplete,
    ResponseHeaderProcessor,
    SaturationDetector,
    Scorer,
    plugin_kinds,
)
from igw.epp.scheduling.cycle_state import AttributeKey, CycleState, StateKey
from igw.epp.scheduling.handle import PluginHandle
from igw.epp.scheduling.metrics import SchedulerMetrics
from igw.epp.scheduling.profile import SchedulerProfile, WeightedScorer
from igw.epp.scheduling.registry import ENTRY_POINT_GROUP, PluginRegistry
from igw.epp.scheduling.request_control import RequestControl
from igw.epp.scheduling.response import Response
from igw.epp.scheduling.results import (
    FilterStep,
    ProfileExplanation,
    ProfileResult,
    SchedulingError,
    SchedulingResult,
    ScoreColumn,
)
from igw.epp.scheduling.scheduler import Scheduler

__all__ = [
    "ENTRY_POINT_GROUP",
    "INFLIGHT_LOAD",
    "KIND_METHODS",
    "PREFIX_CACHE_MATCH",
    "SHED_MESSAGE",
    "Admission",
    "Admitter",
    "AttributeKey",
    "CycleState",
    "DataProducer",
    "Filter",
    "FilterStep",
    "InFlightLoad",
    "LegacyAdmission",
    "Picker",
    "Plugin",
    "PluginHandle",
    "PluginRegistry",
    "PreRequest",
    "PrefixCacheMatchInfo",
    "ProfileExplanation",
    "ProfileHandler",
    "ProfileResult",
    "RequestControl",
    "Response",
    "ResponseBodyProcessor",
    "ResponseComplete",
    "ResponseHeaderProcessor",
    "SaturationDetector",
    "Scheduler",
    "SchedulerMetrics",
    "SchedulerProfile",
    "SchedulingError",
    "SchedulingResult",
    "ScoreColumn",
    "Scorer",
    "StateKey",
    "WeightedScorer",
    "admit",
    "plugin_kinds",
]
