"""The scheduling cycle: the profile handler picks profiles in rounds until it is done.

`Scheduler.schedule` creates (or continues) the request's `CycleState`, asks the handler which
profiles to run, runs them, repeats until the handler answers with none, then lets the handler
turn the results into a `SchedulingResult`. The whole cycle is timed into
`inference_extension_scheduler_e2e_duration_seconds`, each handler call into the plugin histogram.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from time import perf_counter

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.framework.cycle_state import CycleState
from igw.epp.framework.metrics import SchedulerMetrics
from igw.epp.framework.results import (
    ProfileExplanation,
    ProfileResult,
    SchedulingError,
    SchedulingResult,
)
from igw.epp.framework.scheduling import ProfileHandler
from igw.epp.scheduling.profile import SchedulerProfile

__all__ = ["Scheduler"]


class Scheduler:
    """One profile handler and its named profiles; immutable once built."""

    def __init__(
        self,
        handler: ProfileHandler,
        profiles: Sequence[SchedulerProfile],
        metrics: SchedulerMetrics,
    ) -> None:
        if not profiles:
            raise ValueError("a scheduler needs at least one profile")
        self.handler = handler
        self.profiles: Mapping[str, SchedulerProfile] = {p.name: p for p in profiles}
        if len(self.profiles) != len(profiles):
            raise ValueError("scheduler profile names must be unique")
        self._names = tuple(self.profiles)
        self._e2e = metrics.scheduler_e2e.observe
        ids = (handler.type_name, handler.name)
        self._pick_observe = metrics.plugin_timer("ProfilePicker", *ids)
        self._process_observe = metrics.plugin_timer("ProcessProfilesResults", *ids)

    def schedule(
        self,
        request: InferenceRequest,
        endpoints: Sequence[EndpointState],
        state: CycleState | None = None,
        *,
        explain: bool = False,
    ) -> SchedulingResult:
        """Picks the request's targets; raises `SchedulingError` (429) when nothing fits."""
        started = perf_counter()
        if state is None:
            state = CycleState()
        results: dict[str, ProfileResult | None] = {}
        explanations: dict[str, ProfileExplanation] = {}
        handler = self.handler
        while True:
            t = perf_counter()
            names = handler.pick_profiles(request, state, self._names, results)
            self._pick_observe(perf_counter() - t)
            if not names:
                break
            for name in names:
                if name in results:
                    raise SchedulingError(f"profile handler picked profile {name!r} twice")
                profile = self.profiles.get(name)
                if profile is None:
                    raise SchedulingError(f"profile handler picked unknown profile {name!r}")
                run = profile.run(request, state, endpoints, explain=explain)
                results[name] = run.result
                if run.explanation is not None:
                    explanations[name] = run.explanation
        t = perf_counter()
        try:
            result = handler.process_results(request, state, results)
        except SchedulingError as e:
            if explain:
                e.explanations = explanations
            raise
        now = perf_counter()
        self._process_observe(now - t)
        self._e2e(now - started)
        if explain:
            result = dataclasses.replace(result, explanations=explanations)
        return result
