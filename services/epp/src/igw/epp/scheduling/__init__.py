"""The scheduler (§3.2): profiles and the cycle, over the framework's scheduling kinds.

    Scheduler.schedule(request, endpoints)          one cycle, timed end to end
      ProfileHandler.pick_profiles  -> names        repeated until it answers none
        SchedulerProfile.run                        filters -> weighted scorers -> picker
      ProfileHandler.process_results -> SchedulingResult

The kinds and the values they exchange are `igw.epp.framework`'s; the hooks around a cycle are
`igw.epp.requestcontrol`'s. Plugins live in `.plugins`, one module per registered type; the
registry table is `igw.epp.config.builtin`.
"""

from igw.epp.scheduling.attributes import (
    DISPATCHED_LOAD,
    INFLIGHT_LOAD,
    PREDICTED_TTFT,
    PREFIX_CACHE_MATCH,
    DispatchedLoad,
    InFlightLoad,
    PrefixCacheMatchInfo,
    TtftPrediction,
)
from igw.epp.scheduling.profile import SchedulerProfile, WeightedScorer
from igw.epp.scheduling.scheduler import Scheduler

__all__ = [
    "DISPATCHED_LOAD",
    "INFLIGHT_LOAD",
    "PREDICTED_TTFT",
    "PREFIX_CACHE_MATCH",
    "DispatchedLoad",
    "InFlightLoad",
    "PrefixCacheMatchInfo",
    "Scheduler",
    "SchedulerProfile",
    "TtftPrediction",
    "WeightedScorer",
]
