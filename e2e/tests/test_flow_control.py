"""Flow control from outside (issue 12's acceptance): through a real Envoy into the EPP with the
`flowControl` gate on, against a model server that holds every request until the test lets it
answer.

The gateway is the EPP's integration harness (`igw.epp.testing.gateway`: Envoy, the EPP over
real gRPC, a pool the test sets). The pool is one endpoint, `GatedModelServer`, and the EPP's
`concurrency-detector` allows it `SLOTS` requests in flight: with that many held, the pool is
saturated and every further request waits in the EPP's queues. The test then lets the server
answer one request at a time and reads the order in which the queued requests arrive: the
dispatch order. Nothing here sleeps or bounds wall-clock time: every wait is for a condition
(a queue gauge, an arrival, an answer), with generous timeouts, and the assertions are on
orderings and ratios, so they hold on a loaded 2-core machine.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from igw.common.testing.pytest_plugin import EnvoyFactory
from igw.epp.server import EppOptions
from igw.epp.testing.gateway import GatewaySettings, open_gateway
from igw.epp.testing.model_servers import ScriptedModelServer
from igw.epp.testing.started_gateway import Gateway, endpoint_for
from igw.epp.testing.waiting import wait_until

pytestmark = pytest.mark.envoy

MODEL = "m"
SLOTS = 1
"""Requests the model server may hold before the pool counts as saturated."""
OBJECTIVES = {"critical": 10, "batch": 0}
QUEUE_SIZE = "inference_extension_flow_control_queue_size"
QUEUE_BYTES = "inference_extension_flow_control_queue_bytes"
WAIT_S = 30.0
"""Generous: a condition that holds returns at once; a loaded machine may be slow to get there."""


def epp_config(flow_control: str, *policies: str) -> str:
    plugins = "".join(f"- {policy}\n" for policy in policies)
    return f"""\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
featureGates: ["flowControl"]
plugins:
- type: queue-scorer
- type: concurrency-detector
  parameters: {{maxConcurrency: {SLOTS}}}
{plugins}schedulingProfiles:
- name: default
  plugins: [{{pluginRef: queue-scorer}}]
saturationDetector: {{pluginRef: concurrency-detector}}
flowControl: {flow_control}
"""


ROUND_ROBIN = epp_config(
    "{defaultPriorityBand: {fairnessPolicyRef: round-robin-fairness-policy}}",
    "type: round-robin-fairness-policy",
)


@dataclass(slots=True)
class Arrival:
    """A request as the model server received it: its tag (the prompt) and when."""

    tag: str
    at: float
    release: asyncio.Event = field(default_factory=asyncio.Event)


class GatedModelServer(ScriptedModelServer):
    """A model server holding every request until `release_next` lets the oldest one answer,
    or `open_gate` all of them."""

    def __init__(self) -> None:
        super().__init__("gated")
        self.arrivals: list[Arrival] = []
        self.released = 0
        self.gate_open = False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        arrival = Arrival(str((await request.json())["prompt"]), time.monotonic())
        self.arrivals.append(arrival)
        if not self.gate_open:
            await arrival.release.wait()
        return await super().handle(request)

    async def wait_for_arrivals(self, count: int) -> None:
        await wait_until(lambda: len(self.arrivals) >= count, WAIT_S)

    async def release_next(self) -> Arrival:
        """Lets the oldest held request answer once it has arrived; returns it."""
        await self.wait_for_arrivals(self.released + 1)
        arrival = self.arrivals[self.released]
        arrival.release.set()
        self.released += 1
        return arrival

    def open_gate(self) -> None:
        self.gate_open = True
        for arrival in self.arrivals:
            arrival.release.set()


@dataclass(slots=True)
class Client:
    """The requests a test sent: when each left, and each one's task (status, body)."""

    gateway: Gateway
    sent: dict[str, float] = field(default_factory=dict)
    tasks: dict[str, asyncio.Task[tuple[int, bytes]]] = field(default_factory=dict)

    def send(self, tag: str, objective: str, tenant: str) -> asyncio.Task[tuple[int, bytes]]:
        headers = {
            "x-gateway-inference-objective": objective,
            "x-gateway-inference-fairness-id": tenant,
        }
        self.sent[tag] = time.monotonic()
        body = {"model": MODEL, "prompt": tag, "max_tokens": 1}
        task = asyncio.create_task(self.gateway.post(body, **headers))
        self.tasks[tag] = task
        return task

    async def answers(self) -> dict[str, tuple[int, bytes] | BaseException]:
        done = await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        return dict(zip(self.tasks, done, strict=True))


Started = tuple[Gateway, GatedModelServer, Client]
Start = Callable[[str], contextlib.AbstractAsyncContextManager[Started]]


def queued(gateway: Gateway) -> float:
    """Requests in the EPP's flow-control queues, over every flow and band (its registry)."""
    return sum(
        sample.value
        for family in gateway.epp.registry.collect()
        for sample in family.samples
        if sample.name == QUEUE_SIZE
    )


async def scraped(gateway: Gateway, name: str) -> float:
    """`name` summed over its series, as a Prometheus scrape of the EPP's /metrics sees it."""
    url = f"http://127.0.0.1:{gateway.epp.metrics_server.port}/metrics"
    async with gateway.session.get(url) as response:
        text = await response.text()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


@pytest.fixture
def start(envoy_factory: EnvoyFactory) -> Start:
    """Starts a gateway with the EPP config given and the gated server as its pool, saturated
    by one held "blocker" request; on leaving, lets every request answer and checks that the
    gateway still serves and left nothing behind."""

    @contextlib.asynccontextmanager
    async def started(config: str) -> AsyncIterator[Started]:
        settings = GatewaySettings(epp=EppOptions(config_text=config, objectives=OBJECTIVES))
        async with (
            open_gateway(envoy_factory, settings) as gateway,
            GatedModelServer() as server,
        ):
            gateway.route_to(endpoint_for(server))
            client = Client(gateway)
            client.send("blocker", "critical", "blocker")
            await server.wait_for_arrivals(SLOTS)
            try:
                yield gateway, server, client
            finally:
                server.open_gate()
                await client.answers()
            await gateway.still_serves(MODEL)

    return started


async def fill(gateway: Gateway, client: Client, requests: Sequence[tuple[str, str]]) -> list[str]:
    """Sends one request per (objective, tenant) and waits until all of them are queued."""
    before, first = queued(gateway), len(client.sent)
    tags = [f"{objective}/{tenant}/{first + i}" for i, (objective, tenant) in enumerate(requests)]
    for tag, (objective, tenant) in zip(tags, requests, strict=True):
        client.send(tag, objective, tenant)
    await wait_until(lambda: queued(gateway) == before + len(requests), WAIT_S)
    return tags


async def dispatch_order(server: GatedModelServer, count: int) -> list[Arrival]:
    """Releases the blocker, then the next `count` requests one at a time: the order in which
    they arrived is the order the EPP dispatched them."""
    order = [await server.release_next() for _ in range(count + SLOTS)]
    return order[SLOTS:]


def p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


async def test_the_high_band_waits_far_less_than_the_low_band(start: Start) -> None:
    """Sustained overload: per dispatch, 3 batch requests arrive (from two tenants), and a
    critical one every other dispatch; the pool serves one request per dispatch."""
    async with start(ROUND_ROBIN) as (gateway, server, client):
        for turn in range(20):
            batch = [("batch", f"team-{'ab'[i % 2]}") for i in range(3)]
            await fill(gateway, client, batch + [("critical", "team-a")] * (turn % 2 == 0))
            await server.release_next()  # one answer ends: the EPP dispatches one request
            await server.wait_for_arrivals(server.released + SLOTS)
        while server.released < len(client.sent):  # then the backlog drains
            await server.release_next()
        answers = await client.answers()
    assert {tag: a[0] for tag, a in answers.items() if isinstance(a, tuple)} == dict.fromkeys(
        answers, 200
    )
    arrivals = {a.tag: a.at for a in server.arrivals}
    waits: dict[str, list[float]] = collections.defaultdict(list)
    for tag, sent in client.sent.items():
        waits[tag.split("/")[0]].append(arrivals[tag] - sent)
        if tag.startswith("critical/"):
            # Strict priority: a critical request is the very next one dispatched.
            overtook = [t for t, at in arrivals.items() if sent < at < arrivals[tag]]
            assert not overtook, (tag, overtook)
    # A critical request waits about one turn; a batch request's wait grows with the backlog.
    assert p90(waits["critical"]) < 0.3 * p90(waits["batch"]), waits


async def test_round_robin_gives_two_tenants_equal_turns_at_10_to_1_load(start: Start) -> None:
    heavy, light = [("batch", "team-a")] * 40, [("batch", "team-b")] * 4
    async with start(ROUND_ROBIN) as (gateway, server, client):
        await fill(gateway, client, heavy + light)  # the light tenant's requests come last
        order = await dispatch_order(server, 8)
    tenants = [a.tag.split("/")[1] for a in order]
    # While both are backlogged (team-b's 4 requests), they take turns.
    assert collections.Counter(tenants) == {"team-a": 4, "team-b": 4}, tenants
    assert all(first != second for first, second in itertools.pairwise(tenants)), tenants


WEIGHTED = epp_config(
    "{defaultPriorityBand: {fairnessPolicyRef: weighted-fair-fairness-policy}}",
    "{type: weighted-fair-fairness-policy, parameters: {weights: {team-a: 3, team-b: 1}}}",
)


async def test_weighted_fairness_gives_the_configured_shares(start: Start) -> None:
    both = [("batch", "team-a"), ("batch", "team-b")] * 40
    async with start(WEIGHTED) as (gateway, server, client):
        await fill(gateway, client, both)
        order = await dispatch_order(server, 40)
    share = sum(1 for a in order if a.tag.split("/")[1] == "team-a") / len(order)
    assert abs(share - 0.75) <= 0.075, [a.tag for a in order]


async def test_over_capacity_is_429_with_upstreams_message(start: Start) -> None:
    config = epp_config(
        "{maxRequests: 2, defaultPriorityBand: {fairnessPolicyRef: round-robin-fairness-policy}}",
        "type: round-robin-fairness-policy",
    )
    async with start(config) as (gateway, server, client):
        await fill(gateway, client, [("batch", "team-a"), ("critical", "team-b")])
        status, body = await client.send("over", "critical", "team-a")
        assert queued(gateway) == 2  # the two waiting requests keep their places
        server.open_gate()
        answers = await client.answers()
    assert status == 429
    assert body.decode().startswith("inference error: ResourceExhausted - "), body
    assert b"queue at capacity" in body
    assert [a.tag for a in server.arrivals].count("over") == 0
    assert sum(1 for a in answers.values() if isinstance(a, tuple) and a[0] == 200) == 3


async def test_queued_past_the_ttl_is_503_with_upstreams_message(start: Start) -> None:
    config = epp_config(
        "{defaultRequestTTL: 300ms, defaultPriorityBand: "
        "{fairnessPolicyRef: round-robin-fairness-policy}}",
        "type: round-robin-fairness-policy",
    )
    async with start(config) as (gateway, server, client):
        status, body = await client.send("late", "batch", "team-a")
        assert queued(gateway) == 0
    assert status == 503
    assert body.decode().startswith(
        "inference error: ServiceUnavailable - request timed out in queue"
    ), body
    assert [a.tag for a in server.arrivals] == ["blocker"]


async def test_clients_that_leave_while_queued_leave_the_queue_metrics_at_zero(
    start: Start,
) -> None:
    mix = [(objective, tenant) for objective in OBJECTIVES for tenant in ("a", "b")] * 3
    async with start(ROUND_ROBIN) as (gateway, server, client):
        tags = await fill(gateway, client, mix)
        assert await scraped(gateway, QUEUE_SIZE) == len(mix)
        for tag in tags:
            client.tasks.pop(tag).cancel()  # the client closes its connection
        await eventually(lambda: scraped(gateway, QUEUE_SIZE), 0)
        assert await scraped(gateway, QUEUE_BYTES) == 0
        server.open_gate()
    assert [a.tag for a in server.arrivals] == ["blocker"]  # none of them was dispatched


async def eventually(read: Callable[[], Awaitable[float]], value: float) -> None:
    async with asyncio.timeout(WAIT_S):
        while await read() != value:  # noqa: ASYNC110 - the EPP's /metrics, polled
            await asyncio.sleep(0.02)
