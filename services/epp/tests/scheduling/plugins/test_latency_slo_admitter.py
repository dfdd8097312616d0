"""`latency-slo-admitter`: sheds a sheddable request no endpoint is predicted to serve in time."""

import pytest

from igw.epp.framework import CycleState
from igw.epp.scheduling import DISPATCHED_LOAD, PREDICTED_TTFT, DispatchedLoad, TtftPrediction
from igw.epp.scheduling.plugins import LatencySloAdmitter
from igw.epp.testing.builders import endpoints, request

PODS = endpoints(2)
SLOW = {"x-slo-ttft-ms": "300"}


def state(ttfts: tuple[float, float], busy: bool = True) -> CycleState:
    s = CycleState()
    for pod, ttft in zip(PODS, ttfts, strict=True):
        name = pod.endpoint.name
        s.set_attribute(PREDICTED_TTFT, name, TtftPrediction(ttft, 0.001, 0, 100, 0))
        s.set_attribute(DISPATCHED_LOAD, name, DispatchedLoad(1 if busy else 0, 0, 0, 0))
    return s


@pytest.mark.parametrize(
    ("priority", "headers", "ttfts", "busy", "admitted"),
    [
        pytest.param(-1, SLOW, (0.5, 0.9), True, False, id="sheddable-nobody-meets"),
        pytest.param(-1, SLOW, (0.5, 0.2), True, True, id="sheddable-one-meets"),
        pytest.param(-1, SLOW, (0.5, 0.9), False, True, id="an-idle-endpoint"),
        pytest.param(0, SLOW, (0.5, 0.9), True, True, id="not-sheddable"),
        pytest.param(-1, {}, (0.5, 0.9), True, True, id="no-slo"),
    ],
)
def test_admission(
    priority: int,
    headers: dict[str, str],
    ttfts: tuple[float, float],
    busy: bool,
    admitted: bool,
) -> None:
    reason = LatencySloAdmitter().admit_request(
        request(priority=priority, headers=headers), state(ttfts, busy), PODS
    )
    assert (reason is None) is admitted
    if reason is not None:
        assert "300 ms" in reason
