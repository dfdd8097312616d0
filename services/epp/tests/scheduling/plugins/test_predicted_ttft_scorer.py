"""`predicted-ttft-scorer`: the soonest predicted first token wins; a TTFT SLO steers first."""

import pytest

from igw.epp.framework import CycleState, PluginHandle
from igw.epp.scheduling import PREDICTED_TTFT, TtftPrediction
from igw.epp.scheduling.plugins import PredictedTtftScorer
from igw.epp.testing.builders import endpoints, request

PODS = endpoints(3)


def state(*ttfts: float | None) -> CycleState:
    s = CycleState()
    for pod, ttft in zip(PODS, ttfts, strict=True):
        if ttft is not None:
            s.set_attribute(
                PREDICTED_TTFT, pod.endpoint.name, TtftPrediction(ttft, 0.001, 0, 100, 0)
            )
    return s


@pytest.mark.parametrize(
    ("ttfts", "headers", "expected"),
    [
        pytest.param((0.2, 0.4, 0.8), {}, [1.0, 0.5, 0.25], id="best-over-predicted"),
        pytest.param((None, None, None), {}, [1.0, 1.0, 1.0], id="no-predictions"),
        pytest.param((0.2, None, 0.4), {}, [1.0, 1.0, 0.5], id="unknown-is-not-held-against"),
        # With an SLO of 500 ms, 0.2 and 0.4 meet it ([0.5, 1]) and 0.8 does not ([0, 0.25]).
        pytest.param(
            (0.2, 0.4, 0.8), {"x-slo-ttft-ms": "500"}, [1.0, 0.75, 0.0625], id="slo-steers"
        ),
        pytest.param(
            (0.2, 0.4, 0.8), {"x-slo-ttft-ms": "100"}, [1.0, 0.5, 0.25], id="slo-nobody-meets"
        ),
        pytest.param((0.2, 0.4, 0.8), {"x-slo-ttft-ms": "-5"}, [1.0, 0.5, 0.25], id="bad-slo"),
    ],
)
def test_scores(
    ttfts: tuple[float | None, ...], headers: dict[str, str], expected: list[float]
) -> None:
    scores = PredictedTtftScorer().score(request(headers=headers), state(*ttfts), PODS)
    assert scores == pytest.approx(expected)


def test_load_weight_counts_a_requests_own_prefill_again() -> None:
    """Two pods predicted equal: one computes 100 tokens of this prompt, the other 1,000. With
    `loadWeight` the one that adds less work for later requests wins."""
    s = CycleState()
    a, b = PODS[0].endpoint.name, PODS[1].endpoint.name
    s.set_attribute(PREDICTED_TTFT, a, TtftPrediction(1.2, 0.001, 1100, 100, 0))
    s.set_attribute(PREDICTED_TTFT, b, TtftPrediction(1.2, 0.001, 200, 1000, 0))
    assert PredictedTtftScorer().score(request(), s, PODS[:2]) == [1.0, 1.0]
    scores = PredictedTtftScorer(load_weight=1.0).score(request(), s, PODS[:2])
    assert scores == pytest.approx([1.0, 1.3 / 2.2])


def test_load_weight_is_a_parameter() -> None:
    scorer = PredictedTtftScorer.from_config("p", {"loadWeight": 0.5}, PluginHandle())
    assert scorer.load_weight == 0.5
    with pytest.raises(ValueError, match="loadWeight"):
        PredictedTtftScorer(load_weight=-1)
