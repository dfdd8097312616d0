"""Profile runs: filters in order, clamped weighted scores, the picker on the totals."""

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.framework import CycleState, SchedulerMetrics
from igw.epp.scheduling import SchedulerProfile, WeightedScorer
from igw.epp.scheduling.plugins import MaxScorePicker
from igw.epp.testing.builders import endpoints, request, seeded


class FixedScorer:
    type_name: ClassVar[str] = "fixed-scorer"
    category: ClassVar[Literal["distribution", "affinity"]] = "distribution"

    def __init__(self, name: str, scores: list[float]) -> None:
        self.name = name
        self.scores = scores

    @classmethod
    def from_config(cls, name: str, params: Any, handle: Any) -> "FixedScorer":
        raise NotImplementedError

    def score(
        self,
        request: InferenceRequest,
        state: CycleState,
        endpoints: Sequence[EndpointState],
    ) -> Sequence[float]:
        del request, state  # unused: part of the protocol
        return self.scores[: len(endpoints)]


class DropFilter:
    type_name: ClassVar[str] = "drop-filter"

    def __init__(self, name: str, keep: set[str]) -> None:
        self.name = name
        self.keep = keep

    @classmethod
    def from_config(cls, name: str, params: Any, handle: Any) -> "DropFilter":
        raise NotImplementedError

    def filter(
        self,
        request: InferenceRequest,
        state: CycleState,
        endpoints: Sequence[EndpointState],
    ) -> Sequence[EndpointState]:
        del request, state  # unused: part of the protocol
        return [e for e in endpoints if e.endpoint.name in self.keep]


class RecordingPicker(MaxScorePicker):
    def __init__(self) -> None:
        super().__init__("rec", rng=seeded(0))
        self.totals: list[float] = []

    def pick(
        self,
        request: InferenceRequest,
        state: CycleState,
        endpoints: Sequence[EndpointState],
        scores: Sequence[float],
    ) -> Sequence[EndpointState]:
        self.totals = list(scores)
        return super().pick(request, state, endpoints, scores)


def profile(*scorers: WeightedScorer, filters: Sequence[Any] = ()) -> SchedulerProfile:
    return SchedulerProfile("p", filters, scorers, RecordingPicker(), SchedulerMetrics())


def test_scores_are_clamped_then_weighted_and_summed() -> None:
    p = profile(
        WeightedScorer(FixedScorer("a", [2.0, -1.0, math.nan, 0.5]), 2.0),
        WeightedScorer(FixedScorer("b", [0.0, 1.0, 1.0, 0.5]), 3.0),
    )
    run = p.run(request(), CycleState(), endpoints(4))
    assert isinstance(p.picker, RecordingPicker)
    assert p.picker.totals == [2.0, 3.0, 3.0, 2.5]  # 2x clamp(2.0)=2; NaN -> 0
    assert run.result is not None
    assert run.result.targets[0].endpoint.name in {"pod-1-rank-0", "pod-2-rank-0"}


def test_filter_leaving_nothing_fails_the_profile_and_stops() -> None:
    scorer = FixedScorer("a", [1.0])
    p = profile(
        WeightedScorer(scorer),
        filters=[DropFilter("none", set()), DropFilter("never-reached", {"pod-0-rank-0"})],
    )
    run = p.run(request(), CycleState(), endpoints(2))
    assert run.result is None
    assert run.error == "no endpoints available for the given request"


def test_no_candidates_fails_the_profile() -> None:
    assert profile().run(request(), CycleState(), []).result is None


def test_explain_records_filters_scores_and_totals() -> None:
    p = profile(
        WeightedScorer(FixedScorer("a", [0.5, 3.0]), 2.0),
        filters=[DropFilter("f", {"pod-0-rank-0", "pod-2-rank-0"})],
    )
    run = p.run(request(), CycleState(), endpoints(3), explain=True)
    ex = run.explanation
    assert ex is not None
    assert ex.filters[0].remaining == ("pod-0-rank-0", "pod-2-rank-0")
    assert ex.endpoints == ("pod-0-rank-0", "pod-2-rank-0")
    assert ex.scorers[0].scores == (0.5, 1.0)
    assert ex.scorers[0].weight == 2.0
    assert ex.totals == (1.0, 2.0)
    assert ex.picked == ("pod-2-rank-0",)
    assert profile().run(request(), CycleState(), endpoints(1)).explanation is None


def test_plugin_calls_are_timed_per_extension_point() -> None:
    metrics = SchedulerMetrics()
    p = SchedulerProfile(
        "p",
        [DropFilter("f", {"pod-0-rank-0"})],
        [WeightedScorer(FixedScorer("s", [1.0]))],
        MaxScorePicker("m", rng=seeded(0)),
        metrics,
    )
    p.run(request(), CycleState(), endpoints(2))
    get = metrics.registry.get_sample_value
    name = "inference_extension_plugin_duration_seconds_count"
    assert get(name, {"extension_point": "Filter", "plugin_type": "drop-filter",
                      "plugin_name": "f"}) == 1  # fmt: skip
    assert get(name, {"extension_point": "Scorer", "plugin_type": "fixed-scorer",
                      "plugin_name": "s"}) == 1  # fmt: skip
    assert get(name, {"extension_point": "Picker", "plugin_type": "max-score-picker",
                      "plugin_name": "m"}) == 1  # fmt: skip
