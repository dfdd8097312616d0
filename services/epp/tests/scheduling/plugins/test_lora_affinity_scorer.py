"""`lora-affinity-scorer`: running adapter > room to load > adapter waiting > nothing."""

import pytest

from igw.epp.framework import CycleState
from igw.epp.scheduling.plugins import LoraAffinityScorer
from igw.epp.testing.builders import endpoint, request

ADAPTER = "food-review-1"


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        pytest.param({"active": [ADAPTER], "max_lora": 1}, 1.0, id="running-here"),
        pytest.param({"active": ["other"], "max_lora": 2}, 0.8, id="room-for-another"),
        pytest.param(
            {"active": ["other"], "waiting_models": [ADAPTER], "max_lora": 2},
            0.6,
            id="waiting-here-and-full",
        ),
        pytest.param(
            {"waiting_models": [ADAPTER], "max_lora": 4}, 0.8, id="waiting-with-room-counts-as-room"
        ),
        pytest.param({"active": ["a", "b"], "max_lora": 2}, 0.0, id="full-without-it"),
        pytest.param({}, 0.0, id="no-lora-support"),
    ],
)
def test_score(metrics: dict[str, object], expected: float) -> None:
    scores = LoraAffinityScorer().score(
        request(ADAPTER),
        CycleState(),
        [endpoint(**metrics)],  # type: ignore[arg-type]  # table of keyword values
    )
    assert scores == [expected]


def test_orders_endpoints_by_affinity() -> None:
    eps = [
        endpoint("full", active=["a", "b"], max_lora=2),
        endpoint("waiting", active=["a"], waiting_models=[ADAPTER], max_lora=2),
        endpoint("room", max_lora=2),
        endpoint("running", active=[ADAPTER], max_lora=1),
    ]
    scores = LoraAffinityScorer().score(request(ADAPTER), CycleState(), eps)
    ranked = [e.endpoint.name for _, e in sorted(zip(scores, eps, strict=True), reverse=True)]
    assert ranked == ["running", "room", "waiting", "full"]
