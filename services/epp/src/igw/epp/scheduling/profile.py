"""A scheduler profile: filters, weighted scorers and one picker, run over the candidates.

Everything that can be decided at build time is: the plugin tuples, the weights and each plugin's
bound latency histogram. A run then filters sequentially (an empty set ends the profile), asks
every scorer for a score per remaining endpoint, clamps each score to [0, 1] (NaN -> 0),
multiplies it by the scorer's weight and sums (no normalisation by the weight sum, as upstream),
and lets the picker choose from the totals. The same loop serves `Explain`: asked to, it also
records each step (`_Recorder`) into a `ProfileExplanation`; the hot path records nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import perf_counter

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.framework import CycleState, SchedulerMetrics
from igw.epp.framework.results import FilterStep, ProfileExplanation, ProfileResult, ScoreColumn
from igw.epp.framework.scheduling import Filter, Picker, ScoreExplainer, Scorer

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


class _Recorder:
    """The steps of one explained run."""

    __slots__ = ("columns", "steps")

    def __init__(self) -> None:
        self.steps: list[FilterStep] = []
        self.columns: list[ScoreColumn] = []

    def filtered(self, plugin: Filter, remaining: Sequence[EndpointState]) -> None:
        self.steps.append(FilterStep(plugin.name, _names(remaining)))

    def scored(
        self, plugin: Scorer, weight: float, scores: Sequence[float], details: Sequence[str]
    ) -> None:
        clamped = tuple(_clamp(s) for s in scores)
        column = ScoreColumn(plugin.name, plugin.type_name, weight, clamped, tuple(details))
        self.columns.append(column)

    def explanation(
        self,
        candidates: Sequence[EndpointState],
        totals: Sequence[float],
        result: ProfileResult | None,
        error: str | None,
    ) -> ProfileExplanation:
        picked = _names(result.targets) if result is not None else ()
        return ProfileExplanation(
            _names(candidates), tuple(self.steps), tuple(self.columns), tuple(totals), picked,
            error,
        )  # fmt: skip


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
            (f, f.filter, metrics.plugin_timer("Filter", f.type_name, f.name)) for f in filters
        )
        self._score_calls = tuple(
            (s.scorer, s.scorer.score, float(s.weight), metrics.plugin_timer("Scorer", *_ids(s)))
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
        recorder = _Recorder() if explain else None
        candidates = endpoints
        for plugin, call, observe in self._filter_calls:
            started = perf_counter()
            candidates = call(request, state, candidates)
            observe(perf_counter() - started)
            if recorder is not None:
                recorder.filtered(plugin, candidates)
            if not candidates:
                break
        if not candidates:
            return _ended(recorder, candidates, (), None)
        totals = [0.0] * len(candidates)
        for scorer, score_call, weight, observe in self._score_calls:
            started = perf_counter()
            scores = score_call(request, state, candidates)
            observe(perf_counter() - started)
            _accumulate(totals, scores, weight)
            if recorder is not None:
                details = (
                    scorer.score_details(request, state, candidates)
                    if isinstance(scorer, ScoreExplainer)
                    else ()
                )
                recorder.scored(scorer, weight, scores, details)
        started = perf_counter()
        picked = self._pick(request, state, candidates, totals)
        self._pick_observe(perf_counter() - started)
        if recorder is None and picked:  # the hot path: no explanation, a pick
            return ProfileRun(ProfileResult(tuple(picked)))
        result = ProfileResult(tuple(picked)) if picked else None
        return _ended(recorder, candidates, totals, result)


def _ended(
    recorder: _Recorder | None,
    candidates: Sequence[EndpointState],
    totals: Sequence[float],
    result: ProfileResult | None,
) -> ProfileRun:
    error = None if result is not None else NO_ENDPOINTS
    if recorder is None:
        return ProfileRun(result, error)
    return ProfileRun(result, error, recorder.explanation(candidates, totals, result, error))


def _accumulate(totals: list[float], scores: Sequence[float], weight: float) -> None:
    if len(scores) != len(totals):
        raise ValueError(f"a scorer returned {len(scores)} scores for {len(totals)} endpoints")
    # The chained comparison is False for NaN, which therefore scores 0. One comprehension
    # rather than an indexed `+=` per endpoint; the same additions, in the same order.
    totals[:] = [
        t + weight * (s if 0.0 <= s <= 1.0 else (1.0 if s > 1.0 else 0.0))
        for t, s in zip(totals, scores, strict=True)
    ]


def _clamp(score: float) -> float:
    return score if 0.0 <= score <= 1.0 else (1.0 if score > 1.0 else 0.0)


def _names(endpoints: Sequence[EndpointState]) -> tuple[str, ...]:
    return tuple(e.endpoint.name for e in endpoints)


def _ids(weighted: WeightedScorer) -> tuple[str, str]:
    return weighted.scorer.type_name, weighted.scorer.name
