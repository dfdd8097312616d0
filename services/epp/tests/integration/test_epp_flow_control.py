"""Flow control through a real Envoy (§5.4, issue 12): requests wait in the gateway while the
pool is saturated, and come out as upstream's statuses and messages say.

The pool is one `GeneratingModelServer` whose gate holds every request open; the saturation
detector is `concurrency-detector` with one request per endpoint, so one request in flight
saturates the pool and the next ones queue in the EPP. Opening the gate lets them through one at
a time (each frees the slot the next one takes), so the order they reach the pod is the order
flow control dispatched them. Objectives: `critical` = 10, `batch` = 0, `sheddable` = -1.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import orjson
import pytest

from igw.common.testing.pytest_plugin import EnvoyFactory
from igw.epp.requestpath.headers import FAIRNESS_ID, OBJECTIVE
from igw.epp.server import EppOptions
from igw.epp.testing.gateway import GatewaySettings, open_gateway
from igw.epp.testing.generating_server import GeneratingModelServer
from igw.epp.testing.openai_requests import completion
from igw.epp.testing.started_gateway import Gateway, endpoint_for
from igw.epp.testing.waiting import wait_until

pytestmark = pytest.mark.envoy

MODEL = "m"
CONFIG = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
featureGates: [flowControl]
plugins:
- {{type: concurrency-detector, parameters: {{maxConcurrency: 1}}}}
- type: queue-scorer
- type: round-robin-fairness-policy
- {{name: weighted, type: weighted-fair-fairness-policy, parameters: {{weights: {{tenant-a: 3}}}}}}
schedulingProfiles:
- {{name: default, plugins: [{{pluginRef: queue-scorer}}]}}
saturationDetector: {{pluginRef: concurrency-detector}}
flowControl:
  {flow_control}
  priorityBands: [{{priority: 10}}, {{priority: 0, fairnessPolicyRef: {fairness}}}]
"""
CAPACITY = b"inference error: ResourceExhausted - request rejected pre-queue: queue at capacity"
TIMED_OUT = (
    b"inference error: ServiceUnavailable - request timed out in queue: request evicted from "
    b"queue: request TTL expired"
)
QUEUE_SIZE = "inference_extension_flow_control_queue_size"
QUEUE_BYTES = "inference_extension_flow_control_queue_bytes"
QUEUE_DURATION_COUNT = "inference_extension_flow_control_request_queue_duration_seconds_count"


def outcome(name: str) -> dict[str, str]:
    """The queue-duration labels of a batch request (priority 0) ending with outcome `name`."""
    return {
        "fairness_id": "default-flow", "priority": "0", "outcome": name, "inference_pool": "igw",
        "model_name": MODEL, "target_model_name": MODEL,
    }  # fmt: skip


@contextlib.asynccontextmanager
async def flow_controlled(
    envoy_factory: EnvoyFactory,
    flow_control: str,
    fairness: str = "global-strict-fairness-policy",
) -> AsyncIterator[tuple[Gateway, GeneratingModelServer]]:
    epp = EppOptions(
        config_text=CONFIG.format(flow_control=flow_control, fairness=fairness),
        objectives={"critical": 10, "batch": 0, "sheddable": -1},
    )
    async with (
        open_gateway(envoy_factory, GatewaySettings(epp=epp)) as gateway,
        GeneratingModelServer("pod-0", token_interval_s=0.0) as pod,
    ):
        pod.gate.clear()
        gateway.route_to(endpoint_for(pod))
        yield gateway, pod
        pod.gate.set()


def total(gateway: Gateway, name: str) -> float:
    return sum(
        sample.value
        for family in gateway.epp.registry.collect()
        if family.name == name
        for sample in family.samples
    )


Answer = asyncio.Task[tuple[int, bytes]]


def send(gateway: Gateway, prompt: str, objective: str = "batch", tenant: str = "") -> Answer:
    body = completion(MODEL, prompt, max_tokens=1)
    headers = {OBJECTIVE: objective} | ({FAIRNESS_ID: tenant} if tenant else {})
    return asyncio.create_task(gateway.post(body, **headers))


async def occupy(gateway: Gateway, pod: GeneratingModelServer) -> Answer:
    """One request held at the pod: the pool is saturated from here on."""
    task = send(gateway, "first")
    await wait_until(lambda: pod.running == 1)
    return task


async def queued(gateway: Gateway, n: int) -> None:
    await wait_until(lambda: total(gateway, QUEUE_SIZE) == n)


async def test_over_capacity_answers_429(envoy_factory: EnvoyFactory) -> None:
    async with flow_controlled(envoy_factory, "maxRequests: 2") as (gw, pod):
        first = await occupy(gw, pod)
        waiting = [send(gw, f"w{i}") for i in range(2)]
        await queued(gw, 2)
        assert await send(gw, "one too many") == (429, CAPACITY)
        pod.gate.set()
        assert [status for status, _ in await asyncio.gather(first, *waiting)] == [200] * 3
        assert total(gw, QUEUE_SIZE) == 0


async def test_a_request_waiting_past_its_ttl_answers_503(envoy_factory: EnvoyFactory) -> None:
    async with flow_controlled(envoy_factory, "defaultRequestTTL: 300ms") as (
        gw,
        pod,
    ):
        first = await occupy(gw, pod)
        assert await send(gw, "late") == (503, TIMED_OUT)
        assert total(gw, QUEUE_SIZE) == 0
        assert gw.metric(QUEUE_DURATION_COUNT, **outcome("EvictedTTL")) == 1
        pod.gate.set()
        assert (await first)[0] == 200


async def test_clients_leaving_while_queued_leave_the_queue_empty(
    envoy_factory: EnvoyFactory,
) -> None:
    async with flow_controlled(envoy_factory, "maxRequests: 100") as (gw, pod):
        first = await occupy(gw, pod)
        leaving = [send(gw, f"w{i}") for i in range(3)]
        await queued(gw, 3)
        assert total(gw, QUEUE_BYTES) > 0
        for task in leaving:
            task.cancel()
        await asyncio.gather(*leaving, return_exceptions=True)
        # Envoy resets the ext_proc stream; the EPP's stream task is cancelled while it waits.
        await queued(gw, 0)
        assert total(gw, QUEUE_BYTES) == 0
        cancelled = outcome("EvictedContextCancelled")
        await wait_until(lambda: gw.metric(QUEUE_DURATION_COUNT, **cancelled) == 3)
        pod.gate.set()
        assert (await first)[0] == 200
        assert len(pod.received) == 1  # none of the leavers reached the pod
        await gw.still_serves(MODEL)


async def test_the_higher_band_overtakes_the_lower_one(envoy_factory: EnvoyFactory) -> None:
    async with flow_controlled(envoy_factory, "maxRequests: 100") as (gw, pod):
        first = await occupy(gw, pod)
        low = []
        for i in range(2):  # one at a time: their order through Envoy is then known
            low.append(send(gw, f"low-{i}"))
            await queued(gw, i + 1)
        high = send(gw, "high", objective="critical")
        await queued(gw, 3)
        pod.gate.set()
        results = await asyncio.gather(first, *low, high)
        assert [status for status, _ in results] == [200] * 4
    prompts = [orjson.loads(received.body)["prompt"] for received in pod.received]
    assert prompts == ["first", "high", "low-0", "low-1"]


async def test_a_starving_band_evicts_an_in_flight_sheddable_request(
    envoy_factory: EnvoyFactory,
) -> None:
    eviction = "eviction: {starvationThreshold: 200ms}"
    async with flow_controlled(envoy_factory, eviction) as (gw, pod):
        victim = send(gw, "sheddable", objective="sheddable")
        await wait_until(lambda: pod.running == 1)
        critical = send(gw, "critical", objective="critical")
        # Upstream's answer, mid-stream, without the `inference error:` prefix.
        assert await victim == (429, b"request evicted by flow control")
        # The victim's slot is freed (its completion is accounted): the critical one goes.
        await wait_until(lambda: pod.running == 1 and len(pod.received) == 2)
        pod.gate.set()
        assert (await critical)[0] == 200
        assert total(gw, QUEUE_SIZE) == 0
        await gw.still_serves(MODEL)


@pytest.mark.parametrize(
    ("fairness", "expected"),
    [
        # Tenant a offers 8 requests to b's 3: b still gets every other turn while it waits.
        pytest.param("round-robin-fairness-policy", "abababaaaaa", id="round-robin"),
        # weights {tenant-a: 3}: three of a's per one of b's while both wait.
        pytest.param("weighted", "aaabaaabaab", id="weighted-3-to-1"),
    ],
)
async def test_fairness_shares_dispatch_turns_between_tenants(
    envoy_factory: EnvoyFactory, fairness: str, expected: str
) -> None:
    async with flow_controlled(envoy_factory, "maxRequests: 100", fairness=fairness) as (gw, pod):
        first = await occupy(gw, pod)
        sent = []
        for i, tenant in enumerate("a" * 8 + "b" * 3):
            sent.append(send(gw, tenant, tenant=f"tenant-{tenant}"))
            await queued(gw, i + 1)
        pod.gate.set()
        assert [status for status, _ in await asyncio.gather(first, *sent)] == [200] * 12
    turns = "".join(orjson.loads(received.body)["prompt"] for received in pod.received[1:])
    assert turns == expected
