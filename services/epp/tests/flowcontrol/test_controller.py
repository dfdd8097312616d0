"""The flow controller: admission outcomes, strict priority, fairness, bounds, TTL, cancellation,
scale from zero, garbage collection, metrics, and a dispatcher that never spins.

Deterministic: a `BudgetSaturation` lets exactly n requests through, the clock is a `FakeClock`
the test advances, and tests wait on conditions, never on time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from igw.common.errors import InternalError, ResourceExhaustedError, ServiceUnavailableError
from igw.common.telemetry import hot
from igw.epp.endpoints import InferenceRequest
from igw.epp.flowcontrol import FlowController, bands
from igw.epp.scheduling.plugins import UtilizationDetector
from igw.epp.testing.builders import FakeClock, endpoint
from igw.epp.testing.flowcontrol import BudgetSaturation, build_controller
from igw.epp.testing.requestpath import StaticEndpoints
from igw.epp.testing.waiting import wait_until


def req(
    fairness_id: str = "default-flow", priority: int = 0, size: int = 10, rid: str = "r"
) -> InferenceRequest:
    return InferenceRequest(
        rid, "target", {}, priority=priority, fairness_id=fairness_id, size_bytes=size,
        incoming_model="model",
    )  # fmt: skip


class Harness:
    def __init__(self, controller: FlowController, detector: BudgetSaturation) -> None:
        self.fc = controller
        self.detector = detector
        self.order: list[str] = []
        self.tasks: list[asyncio.Task[None]] = []

    def submit(self, request: InferenceRequest) -> asyncio.Task[None]:
        async def admitted() -> None:
            await self.fc.admit(request, ())
            self.order.append(request.request_id)

        task = asyncio.get_running_loop().create_task(admitted())
        self.tasks.append(task)
        return task

    async def queued(self, n: int) -> None:
        await wait_until(lambda: self.fc.bands.length == n)

    async def release(self, n: int) -> None:
        done = len(self.order) + n
        self.detector.budget += n
        self.fc.wake()
        await wait_until(lambda: len(self.order) >= done)

    def gauge(self, name: str) -> float:
        metric: hot.Gauge = getattr(self.fc.metrics, name)
        return sum(child.value for child in metric._children.values())


Make = Callable[..., Harness]


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    started: list[Harness] = []

    def build(flow_control: str = "{}", **kwargs: Any) -> Harness:
        detector = kwargs.pop("detector", None) or BudgetSaturation()
        controller = build_controller(flow_control, detector=detector, **kwargs)
        controller.start()
        harness = Harness(controller, detector)
        started.append(harness)
        return harness

    yield build
    for harness in started:
        await harness.fc.stop()
        for task in harness.tasks:
            task.cancel()
        await asyncio.gather(*harness.tasks, return_exceptions=True)


async def test_an_unsaturated_pool_admits_at_once(make: Make) -> None:
    h = make()
    h.detector.budget = 1
    await asyncio.wait_for(h.fc.admit(req(), ()), 10)
    assert h.gauge("queue_size") == 0
    durations = h.fc.metrics.queue_duration
    assert ("default-flow", "0", "Dispatched", "pool", "model", "target") in durations._children


async def test_a_saturated_pool_holds_requests_until_capacity_frees(make: Make) -> None:
    h = make()
    h.submit(req(rid="a"))
    h.submit(req(rid="b"))
    await h.queued(2)
    assert h.gauge("queue_size") == 2
    assert h.gauge("queue_bytes") == 20
    await h.release(1)
    assert h.order == ["a"]
    await h.release(1)
    assert h.order == ["a", "b"]
    assert h.gauge("queue_size") == 0
    assert h.gauge("queue_bytes") == 0


async def test_the_higher_band_goes_first_and_blocks_lower_bands(make: Make) -> None:
    h = make("{priorityBands: [{priority: 10}, {priority: 0}]}")
    h.submit(req(priority=0, rid="low-1"))
    h.submit(req(priority=0, rid="low-2"))
    await h.queued(2)
    h.submit(req(priority=10, rid="high"))
    await h.queued(3)
    await h.release(2)
    assert h.order == ["high", "low-1"]


async def test_round_robin_gives_flows_equal_turns_whatever_their_load(make: Make) -> None:
    h = make("{defaultPriorityBand: {fairnessPolicyRef: round-robin-fairness-policy}}",
             plugins="[{type: round-robin-fairness-policy}]")  # fmt: skip
    for i in range(6):
        h.submit(req("tenant-a", rid=f"a{i}"))
    h.submit(req("tenant-b", rid="b0"))
    h.submit(req("tenant-b", rid="b1"))
    await h.queued(8)
    await h.release(5)
    assert h.order == ["a0", "b0", "a1", "b1", "a2"]


async def test_weighted_fairness_gives_configured_shares(make: Make) -> None:
    h = make("{defaultPriorityBand: {fairnessPolicyRef: wf}}",
             plugins="[{name: wf, type: weighted-fair-fairness-policy, "
             "parameters: {weights: {tenant-a: 3}}}]")  # fmt: skip
    for i in range(8):
        h.submit(req("tenant-a", rid=f"a{i}"))
        h.submit(req("tenant-b", rid=f"b{i}"))
    await h.queued(16)
    await h.release(8)
    assert h.order == ["a0", "a1", "a2", "b0", "a3", "a4", "a5", "b1"]


@pytest.mark.parametrize(
    "flow_control",
    [
        pytest.param("{maxRequests: 2}", id="global-requests"),
        pytest.param("{maxBytes: 25}", id="global-bytes"),
        pytest.param("{defaultPriorityBand: {maxRequests: 2}}", id="band-requests"),
        pytest.param("{defaultPriorityBand: {maxBytes: 25}}", id="band-bytes"),
    ],
)
async def test_over_capacity_is_refused_with_429(make: Make, flow_control: str) -> None:
    h = make(flow_control)
    h.submit(req(rid="a"))
    h.submit(req(rid="b"))
    await h.queued(2)
    with pytest.raises(ResourceExhaustedError) as caught:
        await h.fc.admit(req(rid="c"), ())
    assert caught.value.body() == (
        "inference error: ResourceExhausted - request rejected pre-queue: queue at capacity"
    )
    assert h.gauge("queue_size") == 2
    labels = ("default-flow", "0", "RejectedCapacity", "pool", "model", "target")
    assert labels in h.fc.metrics.queue_duration._children


async def test_band_limits_are_per_band(make: Make) -> None:
    h = make("{priorityBands: [{priority: 1, maxRequests: 1}]}")
    h.submit(req(priority=1, rid="a"))
    h.submit(req(priority=0, rid="b"))
    await h.queued(2)
    with pytest.raises(ResourceExhaustedError):
        await h.fc.admit(req(priority=1), ())


async def test_a_request_past_its_ttl_gets_503(make: Make) -> None:
    clock = FakeClock()
    h = make("{defaultRequestTTL: 5s}", clock=clock)
    task = h.submit(req(rid="late"))
    await h.queued(1)
    clock.now += 5.0
    h.fc.wake()
    with pytest.raises(ServiceUnavailableError) as caught:
        await asyncio.wait_for(task, 10)
    assert caught.value.body() == (
        "inference error: ServiceUnavailable - request timed out in queue: request evicted "
        "from queue: request TTL expired"
    )
    assert h.gauge("queue_size") == 0
    assert ("default-flow", "0", "EvictedTTL", "pool", "model", "target") in (
        h.fc.metrics.queue_duration._children
    )


async def test_a_cancelled_request_leaves_its_queue_at_once(make: Make) -> None:
    h = make()
    task = h.submit(req(rid="gone"))
    h.submit(req(rid="stays"))
    await h.queued(2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert h.fc.bands.length == 1
    assert h.gauge("queue_size") == 1
    assert h.gauge("queue_bytes") == 10
    labels = ("default-flow", "0", "EvictedContextCancelled", "pool", "model", "target")
    assert labels in h.fc.metrics.queue_duration._children
    await h.release(1)
    assert h.order == ["stays"]
    assert h.gauge("queue_size") == 0


async def test_no_endpoints_means_waiting_until_some_appear(make: Make) -> None:
    source = StaticEndpoints()
    clock = FakeClock()
    detector = UtilizationDetector(clock=clock)
    h = make(detector=detector, source=source, clock=clock)
    h.submit(req(rid="first"))
    await h.queued(1)
    await wait_until(lambda: h.fc.cycles >= 1)
    assert h.fc.metrics.pool_saturation.labels("pool").value == 1.0
    source.states = (endpoint("pod-a", updated_at=clock.now),)
    h.fc.wake()
    await wait_until(lambda: h.order == ["first"])
    assert h.fc.metrics.pool_saturation.labels("pool").value == 0.0


async def test_a_dispatcher_on_a_saturated_pool_does_not_spin(make: Make) -> None:
    h = make(poll_s=60.0)
    for i in range(50):
        h.submit(req(rid=str(i)))
    await h.queued(50)
    cycles = h.fc.cycles
    for _ in range(200):
        await asyncio.sleep(0)
    assert h.fc.cycles - cycles <= 1
    h.fc.wake()  # a completion or new metrics: one more look, no more
    for _ in range(200):
        await asyncio.sleep(0)
    assert h.fc.cycles - cycles <= 2


async def test_an_idle_dispatcher_sleeps_until_a_request_comes(make: Make) -> None:
    h = make()
    await h.queued(0)
    cycles = h.fc.cycles
    for _ in range(200):
        await asyncio.sleep(0)
    assert h.fc.cycles == cycles


async def test_unknown_priorities_get_a_band_that_is_collected_when_idle(make: Make) -> None:
    clock = FakeClock()
    h = make("{priorityBands: [{priority: 0}]}", clock=clock, flow_gc_s=1.0, band_gc_s=2.0)
    h.detector.budget = 1
    await asyncio.wait_for(h.fc.admit(req(priority=7), ()), 10)
    assert h.fc.bands.priorities == (7, 0)
    clock.now += 1.0
    h.fc.bands.collect_garbage(clock.now)
    assert h.fc.bands.priorities == (7, 0)
    assert not h.fc.bands.band(7, clock.now).flows  # the idle flow went first
    clock.now += 1.0
    h.fc.bands.collect_garbage(clock.now)
    assert list(h.fc.bands.priorities) == [0], "the configured band stays"


async def test_stop_ends_waiting_requests_and_refuses_new_ones(make: Make) -> None:
    h = make()
    task = h.submit(req())
    await h.queued(1)
    await h.fc.stop()
    with pytest.raises(InternalError, match="request evicted from queue: flow controller is not"):
        await task
    with pytest.raises(InternalError, match="request rejected pre-queue: flow controller is not"):
        await h.fc.admit(req(), ())
    assert h.gauge("queue_size") == 0


async def test_dispatched_requests_do_not_linger_in_the_ttl_index(make: Make) -> None:
    h = make("{defaultRequestTTL: 60s}")
    h.detector.budget = 200
    await asyncio.gather(*(h.fc.admit(req(rid=str(i)), ()) for i in range(200)))
    h.submit(req(rid="waiting"))  # one more look at the queues
    await h.queued(1)
    await wait_until(lambda: len(h.fc._deadlines) <= 64)


async def test_a_client_naming_a_new_flow_per_request_keeps_flows_bounded(
    make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bands, "MAX_FLOWS", 5)
    h = make()
    for i in range(50):  # each admitted at once, leaving an empty flow behind
        h.detector.budget += 1
        await asyncio.wait_for(h.fc.admit(req(f"tenant-{i}", rid=f"r{i}"), ()), 10)
    band = h.fc.bands.band(0, 0.0)
    assert 0 < len(band.flows) <= 5
    assert "tenant-49" in band.flows
    # A flow with a queued request is never swept, however many new flows come.
    h.submit(req("waiting", rid="held"))
    await h.queued(1)
    for i in range(50):
        band.flow(f"other-{i}", 0.0)
    assert "waiting" in band.flows
    assert len(band.flows) <= 5
