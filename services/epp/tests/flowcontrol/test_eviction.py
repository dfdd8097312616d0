"""Eviction of in-flight sheddable requests: which requests are tracked, the victim order
(lowest priority, then the most recently dispatched), the pacing, and the controller evicting
only for a band whose head waited past the threshold on a saturated pool."""

from __future__ import annotations

import asyncio

import pytest

from igw.epp.endpoints import InferenceRequest
from igw.epp.flowcontrol import EVICTED_BODY, EvictionConfig, FlowControlEvictedError, InFlight
from igw.epp.testing.builders import FakeClock
from igw.epp.testing.flowcontrol import build_controller
from igw.epp.testing.waiting import wait_until


def req(rid: str, priority: int) -> InferenceRequest:
    return InferenceRequest(rid, "m", {}, priority=priority)


async def test_only_sheddable_requests_are_tracked() -> None:
    in_flight = InFlight(EvictionConfig())
    critical, sheddable = req("c", 0), req("s", -1)
    in_flight.dispatched(critical, 0.0)
    in_flight.dispatched(sheddable, 0.0)
    assert in_flight.signal(critical) is None
    assert in_flight.signal(sheddable) is not None
    assert len(in_flight) == 1


async def test_the_victim_is_the_lowest_priority_then_the_latest_dispatched() -> None:
    in_flight = InFlight(EvictionConfig(min_interval_s=0.0))
    requests = [req("old-1", -1), req("new-1", -1), req("old-2", -2), req("new-2", -2)]
    for at, request in enumerate(requests):
        in_flight.dispatched(request, float(at))
    order = [in_flight.evict_below(0, 10.0 + i) for i in range(5)]
    assert [r.request_id if r else None for r in order] == [
        "new-2", "old-2", "new-1", "old-1", None,
    ]  # fmt: skip
    assert in_flight.evicted == 4


async def test_an_evicted_request_gets_upstreams_answer_and_others_are_spared() -> None:
    in_flight = InFlight(EvictionConfig())
    victim, lower_bound = req("v", -1), req("w", -5)
    in_flight.dispatched(victim, 0.0)
    in_flight.dispatched(lower_bound, 0.0)
    assert in_flight.evict_below(-5, 1.0) is None  # nothing below -5
    assert in_flight.evict_below(0, 1.0) is lower_bound
    assert in_flight.evict_below(0, 1.01) is None, "paced: one per min_interval_s"
    signal = in_flight.signal(victim)
    assert signal is not None
    assert not signal.done()
    in_flight.finished(victim)  # it ended on its own: nothing to evict any more
    assert signal.cancelled()
    assert in_flight.evict_below(0, 5.0) is None


def test_the_evicted_error_is_429_with_the_plain_body() -> None:
    error = FlowControlEvictedError()
    assert (error.status, error.body()) == (429, EVICTED_BODY)
    assert EVICTED_BODY == "request evicted by flow control"


@pytest.mark.parametrize(
    ("waited", "evicted"),
    [pytest.param(0.5, False, id="not-yet-starving"), pytest.param(1.0, True, id="starving")],
)
async def test_the_controller_evicts_for_a_starving_band(waited: float, evicted: bool) -> None:
    clock = FakeClock()
    fc = build_controller(clock=clock, eviction=EvictionConfig(starvation_threshold_s=1.0))
    fc.start()
    try:
        sheddable = req("s", -1)
        fc.dispatched(sheddable)  # in flight, as after its PreRequest
        signal = fc.interruption(sheddable)
        assert signal is not None
        waiting = asyncio.create_task(fc.admit(req("c", 5), ()))
        await wait_until(lambda: fc.bands.length == 1)
        clock.now += waited
        cycles = fc.cycles
        fc.wake()
        await wait_until(lambda: fc.cycles > cycles)
        assert signal.done() is evicted
        if evicted:
            assert isinstance(signal.result(), FlowControlEvictedError)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
    finally:
        await fc.stop()
