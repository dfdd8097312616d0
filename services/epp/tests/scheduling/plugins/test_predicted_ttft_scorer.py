"""`predicted-ttft-scorer`: the soonest predicted first token wins; a TTFT SLO steers first."""

import pytest

from igw.epp.framework import CycleState
from igw.epp.scheduling import PREDICTED_TTFT, TtftPrediction
from igw.epp.scheduling.plugins import PredictedTtftScorer
from igw.epp.testing.builders import endpoints, request

PODS = endpoints(3)


def state(*ttfts: float | None, delays: tuple[float, ...] = (0.0, 0.0, 0.0)) -> CycleState:
    s = CycleState()
    for pod, ttft, delay in zip(PODS, ttfts, delays, strict=True):
        if ttft is not None:
            prediction = TtftPrediction(ttft, 0.001, 0, 100, 0, delay_s=delay)
            s.set_attribute(PREDICTED_TTFT, pod.endpoint.name, prediction)
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


def test_the_delay_caused_to_later_arrivals_is_ranked_on_but_an_slo_judges_the_ttft() -> None:
    """Pod 0 answers soonest but its prefill would hold up a busy pod's next arrivals."""
    busy = state(0.2, 0.3, 0.4, delays=(0.4, 0.0, 0.0))
    scores = PredictedTtftScorer().score(request(), busy, PODS)
    assert scores == pytest.approx([0.5, 1.0, 0.75])
    # With an SLO of 250 ms only pod 0's TTFT meets it: the SLO group wins over the delay.
    slo = PredictedTtftScorer().score(request(headers={"x-slo-ttft-ms": "250"}), busy, PODS)
    assert slo.index(max(slo)) == 0
