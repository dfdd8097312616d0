"""The scheduling cycle: handler rounds, result, e2e metric, explain."""

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import pytest

from igw.epp.endpoints import InferenceRequest
from igw.epp.framework import (
    CycleState,
    ProfileResult,
    SchedulerMetrics,
    SchedulingError,
    SchedulingResult,
)
from igw.epp.scheduling import Scheduler, SchedulerProfile, WeightedScorer
from igw.epp.scheduling.plugins import (
    HeaderBasedTestingFilter,
    MaxScorePicker,
    QueueScorer,
    SingleProfileHandler,
)
from igw.epp.testing.builders import endpoint, request, seeded


class TwoRoundHandler:
    """Runs `decode`, then `prefill`, then stops; decode is primary."""

    type_name: ClassVar[str] = "two-round-profile-handler"
    name = "two"

    @classmethod
    def from_config(cls, name: str, params: Any, handle: Any) -> "TwoRoundHandler":
        del handle, name, params  # unused: part of the protocol
        return cls()

    def pick_profiles(
        self,
        request: InferenceRequest,
        state: CycleState,
        profiles: Sequence[str],
        results: Mapping[str, ProfileResult | None],
    ) -> Sequence[str]:
        del profiles, request, state  # unused: part of the protocol
        return [n for n in ("decode", "prefill") if n not in results][:1]

    def process_results(
        self,
        request: InferenceRequest,
        state: CycleState,
        results: Mapping[str, ProfileResult | None],
    ) -> SchedulingResult:
        del request, state  # unused: part of the protocol
        return SchedulingResult(dict(results), "decode")


def make_profile(name: str, metrics: SchedulerMetrics) -> SchedulerProfile:
    picker = MaxScorePicker(rng=seeded(0))
    return SchedulerProfile(name, [], [WeightedScorer(QueueScorer())], picker, metrics)


EPS = [endpoint("busy", waiting=9), endpoint("idle", waiting=0)]


def test_single_profile_cycle_picks_and_is_timed() -> None:
    metrics = SchedulerMetrics()
    s = Scheduler(SingleProfileHandler(), [make_profile("default", metrics)], metrics)
    result = s.schedule(request(), EPS)
    assert result.primary_profile == "default"
    assert [t.endpoint.name for t in result.targets] == ["idle"]
    assert result.explanations == {}
    get = metrics.registry.get_sample_value
    assert get("inference_extension_scheduler_e2e_duration_seconds_count") == 1
    labels = {"extension_point": "ProfilePicker", "plugin_type": "single-profile-handler",
              "plugin_name": "single-profile-handler"}  # fmt: skip
    assert get("inference_extension_plugin_duration_seconds_count", labels) == 2


def test_handler_rounds_run_each_profile() -> None:
    metrics = SchedulerMetrics()
    profiles = [make_profile("decode", metrics), make_profile("prefill", metrics)]
    result = Scheduler(TwoRoundHandler(), profiles, metrics).schedule(request(), EPS, explain=True)
    assert set(result.profile_results) == {"decode", "prefill"}
    assert set(result.explanations) == {"decode", "prefill"}


def test_no_endpoint_left_is_a_429() -> None:
    metrics = SchedulerMetrics()
    profile = SchedulerProfile(
        "default", [HeaderBasedTestingFilter()], [], MaxScorePicker(rng=seeded(0)), metrics
    )
    with pytest.raises(SchedulingError) as info:
        Scheduler(SingleProfileHandler(), [profile], metrics).schedule(request(), EPS)
    assert info.value.status == 429
