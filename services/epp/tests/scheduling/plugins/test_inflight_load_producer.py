"""`inflight-load-producer`: counts on PreRequest, uncounts on completion."""

from igw.epp.framework import CycleState, ProfileResult, SchedulingResult
from igw.epp.scheduling import INFLIGHT_LOAD, InFlightLoad
from igw.epp.scheduling.plugins import InflightLoadProducer
from igw.epp.testing.builders import endpoint, endpoints, request


def loads(p: InflightLoadProducer) -> dict[str, InFlightLoad]:
    state = CycleState()
    p.prepare_data(request(), state, endpoints(2))
    return dict(state.attributes(INFLIGHT_LOAD))


def test_counts_requests_and_estimated_tokens_until_complete() -> None:
    p = InflightLoadProducer()
    target = endpoint("pod-0-rank-0")
    result = SchedulingResult({"d": ProfileResult((target,))}, "d")
    p.pre_request(request(request_id="r1", size_bytes=4000), CycleState(), result)
    p.pre_request(request(request_id="r2", size_bytes=400), CycleState(), result)
    assert loads(p) == {"pod-0-rank-0": InFlightLoad(2, 2500 + 250)}
    p.response_complete(request(request_id="r1"), target.endpoint)
    assert loads(p) == {"pod-0-rank-0": InFlightLoad(1, 250)}
    p.response_complete(request(request_id="r2"), target.endpoint)
    p.response_complete(request(request_id="r2"), target.endpoint)
    assert loads(p) == {}


def test_the_published_snapshot_does_not_change_later() -> None:
    p = InflightLoadProducer()
    state = CycleState()
    p.prepare_data(request(), state, endpoints(1))
    result = SchedulingResult({"d": ProfileResult((endpoint("pod-0-rank-0"),))}, "d")
    p.pre_request(request(request_id="r1"), state, result)
    assert dict(state.attributes(INFLIGHT_LOAD)) == {}
