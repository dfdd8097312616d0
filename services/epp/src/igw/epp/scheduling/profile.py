"""A scheduler profile: filters, weighted scorers and one picker, run over the candidates.

Everything that can be decided at build time is: the plugin tuples, the weights and each plugin's
bound latency histogram. A run then filters sequentially (an empty set ends the profile), asks
every scorer for a score per remaining endpoint, clamps each score to [0, 1] (NaN -> 0),
multiplies it by the scorer's weight and sums (no normalisation by the weight sum, as upstream),
and lets the picker choose from the totals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import perf_counter

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.scheduling.contracts import Filter, Picker, Scorer
from igw.epp.scheduling.cycle_state import CycleState
from igw.epp.scheduling.metrics import SchedulerMetrics
from igw.epp.scheduling.results import FilterStep, ProfileExplanation, ProfileResult, ScoreColumn

__all__ = ["NO_ENDPOINTS", "ProfileRun", "SchedulerProfile", "WeightedScorer"]

NO_ENDPOINTS = "no endpoints available for the given request"

_Observe = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class WeightedScorer:
    scorer: Scorer
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class ProfileRun:
    result: ProfileResult | None
    error: str | None = None
    explanation: ProfileExplanation | None = None


class SchedulerProfile:
    """One named profile; immutable once built."""

    def __init__(
        self,
        name: str,
        filters: Sequence[Filter],
        scorers: Sequence[WeightedScorer],
        picker: Picker,
        metrics: SchedulerMetrics,
    ) -> None:
        self.name = name
        self.filters = tuple(filters)
        self.scorers = tuple(scorers)
        self.picker = picker
        self._filter_calls = tuple(
            (f.filter, metrics.plugin_timer("Filter", f.type_name, f.name)) for f in filters
        )
        self._score_calls = tuple(
            (s.scorer.score, float(s.weight), metrics.plugin_timer("Scorer", *_ids(s.scorer)))
            for s in scorers
        )
        self._pick = picker.pick
        self._pick_observe = metrics.plugin_timer("Picker", picker.type_name, picker.name)

    def run(
        self,
        request: InferenceRequest,
        state: CycleState,
        endpoints: Sequence[EndpointState],
        *,
        explain: bool = False,
    ) -> ProfileRun:
        if explain:
            return self._run_explained(request, state, endpoints)
        candidates = endpoints
        for call, observe in self._filter_calls:
            started = perf_counter()
            candidates = call(request, state, candidates)
            observe(perf_counter() - started)
            if not candidates:
                return ProfileRun(None, NO_ENDPOINTS)
        if not candidates:
            return ProfileRun(None, NO_ENDPOINTS)
        totals = [0.0] * len(candidates)
        for score_call, weight, observe in self._score_calls:
            started = perf_counter()
            scores = score_call(request, state, candidates)
            observe(perf_counter() - started)
            _accumulate(totals, scores, weight)
        return self._run_picker(request, state, candidates, totals)

    def _run_picker(
        self,
        request: InferenceRequest,
        state: CycleState,
        candidates: Sequence[EndpointState],
        totals: list[float],
    ) -> ProfileRun:
        started = perf_counter()
        picked = self._pick(request, state, candidates, totals)
        self._pick_observe(perf_counter() - started)
        if not picked:
            return ProfileRun(None, NO_ENDPOINTS)
        return ProfileRun(ProfileResult(tuple(picked)))

    def _run_explained(
        self, request: InferenceRequest, state: CycleState, endpoints: Sequence[EndpointState]
    ) -> ProfileRun:
        """The same run, keeping every intermediate step for `Explain`."""
        candidates = endpoints
        steps: list[FilterStep] = []
        for f, (call, observe) in zip(self.filters, self._filter_calls, strict=True):
            started = perf_counter()
            candidates = call(request, state, candidates)
            observe(perf_counter() - started)
            steps.append(FilterStep(f.name, _names(candidates)))
            if not candidates:
                break
        columns: list[ScoreColumn] = []
        totals = [0.0] * len(candidates)
        for ws, (score_call, weight, observe) in zip(self.scorers, self._score_calls, strict=True):
            if not candidates:
                break
            started = perf_counter()
            scores = score_call(request, state, candidates)
            observe(perf_counter() - started)
            _accumulate(totals, scores, weight)
            clamped = tuple(_clamp(s) for s in scores)
            columns.append(ScoreColumn(ws.scorer.name, ws.scorer.type_name, weight, clamped))
        run = (
            self._run_picker(request, state, candidates, totals)
            if candidates
            else ProfileRun(None, NO_ENDPOINTS)
        )
        picked = _names(run.result.targets) if run.result is not None else ()
        explanation = ProfileExplanation(
            _names(candidates), tuple(steps), tuple(columns), tuple(totals), picked, run.error
        )
        return ProfileRun(run.result, run.error, explanation)


def _accumulate(totals: list[float], scores: Sequence[float], weight: float) -> None:
    if len(scores) != len(totals):
        raise ValueError(f"a scorer returned {len(scores)} scores for {len(totals)} endpoints")
    for i, s in enumerate(scores):
        # The chained comparison is False for NaN, which therefore scores 0.
        totals[i] += weight * (s if 0.0 <= s <= 1.0 else (1.0 if s > 1.0 else 0.0))


def _clamp(score: float) -> float:
    return score if 0.0 <= score <= 1.0 else (1.0 if score > 1.0 else 0.0)


def _names(endpoints: Sequence[EndpointState]) -> tuple[str, ...]:
    return tuple(e.endpoint.name for e in endpoints)


def _ids(plugin: Scorer) -> tuple[str, str]:
    return plugin.type_name, plugin.name
