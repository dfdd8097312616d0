"""Leader election against a fake API server that speaks the real Lease protocol (optimistic
concurrency, 409 on a stale resourceVersion): one leader at a time, hand-over on release, take-over
after a dead leader's lease expires, stepping down when the Lease is lost.

Short leases keep the tests fast; the margins stay wide for a loaded machine: a leader that cannot
renew steps down after at most retry + renew deadline (1.2 s), a standby waits a whole lease (2 s)
after the last change it saw. Waits are on conditions, never fixed sleeps; the only timed claims
are lower bounds (a take-over that must not come before the lease expires), which load cannot
break.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import kubernetes
import pytest

from igw.common.kube import LeaderElector, LeaseTimings
from igw.common.kube.leader import micro_time
from igw.common.testing.kube_api import FakeKubeApi

NS, NAME = "serving", "epp-serving-llama.gateway-api-inference-extension.sigs.k8s.io"
LEASE = ("coordination.k8s.io/v1", "Lease", NAME, NS)
FAST = LeaseTimings(lease_duration_s=2, renew_deadline_s=1, retry_period_s=0.2)
SETTLE_S = 30.0
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


async def eventually(condition: Callable[[], bool], what: str) -> float:
    """Wait for `condition`; returns the monotonic time it was first seen true."""
    deadline = time.monotonic() + SETTLE_S
    # Polling on purpose: the state is written by the electors' threads.
    while not condition():
        assert time.monotonic() < deadline, f"not within {SETTLE_S} s: {what}"
        await asyncio.sleep(0.01)
    return time.monotonic()


def wall(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def lease(api: FakeKubeApi) -> dict[str, Any]:
    stored = api.get(*LEASE)
    assert stored is not None
    spec: dict[str, Any] = stored["spec"]
    return spec


@dataclass
class Watchdog:
    """Looks at every elector every few milliseconds; two leaders at once is a violation."""

    electors: list[LeaderElector] = field(default_factory=list)
    samples: int = 0
    violations: list[list[str]] = field(default_factory=list)

    def leaders(self) -> list[LeaderElector]:
        return [elector for elector in self.electors if elector.is_leader]

    async def run(self) -> None:
        while True:
            leading = [elector.identity for elector in self.leaders()]
            self.samples += 1
            if len(leading) > 1:
                self.violations.append(leading)
            await asyncio.sleep(0.002)


@pytest.fixture
async def api() -> AsyncIterator[FakeKubeApi]:
    async with FakeKubeApi() as fake:
        yield fake


@pytest.fixture
def api_client(api: FakeKubeApi) -> Iterator[kubernetes.client.ApiClient]:
    configuration = kubernetes.client.Configuration()
    configuration.host = api.url
    client = kubernetes.client.ApiClient(configuration)
    yield client
    client.close()  # type: ignore[no-untyped-call]  # untyped client API


@pytest.fixture
async def watchdog() -> AsyncIterator[Watchdog]:
    dog = Watchdog()
    task = asyncio.create_task(dog.run())
    yield dog
    task.cancel()
    assert dog.samples > 0
    assert dog.violations == [], "two leaders at once"


@pytest.fixture
async def elect(
    api_client: kubernetes.client.ApiClient, watchdog: Watchdog
) -> AsyncIterator[Callable[..., LeaderElector]]:
    """Start electors (watched by the watchdog); every one is stopped, releasing, at the end."""

    def start(identity: str, **options: Any) -> LeaderElector:
        options.setdefault("timings", FAST)
        elector = LeaderElector(api_client, NAME, NS, identity=identity, **options)
        watchdog.electors.append(elector)
        elector.start()
        return elector

    yield start
    # Stopping joins a thread that talks to the fake API on this loop: never block the loop.
    for elector in watchdog.electors:
        assert await asyncio.to_thread(elector.stop)


async def one_leader(watchdog: Watchdog) -> LeaderElector:
    await eventually(lambda: len(watchdog.leaders()) == 1, "one leader")
    (leader,) = watchdog.leaders()
    return leader


async def one_leader_of(elect: Callable[..., LeaderElector], watchdog: Watchdog) -> LeaderElector:
    elect("a")
    elect("b")
    return await one_leader(watchdog)


async def test_of_two_electors_exactly_one_leads_and_keeps_leading(
    api: FakeKubeApi, elect: Callable[..., LeaderElector], watchdog: Watchdog
) -> None:
    a, b = elect("a"), elect("b")
    leader = await one_leader(watchdog)
    first = lease(api)
    # Several renewals later the same one leads, and the Lease says so.
    await eventually(lambda: lease(api)["renewTime"] != first["renewTime"], "a renewal")
    await eventually(lambda: lease(api)["renewTime"] != first["renewTime"], "another renewal")

    assert watchdog.leaders() == [leader]
    spec = lease(api)
    assert spec["holderIdentity"] == leader.identity
    assert spec["leaseDurationSeconds"] == 2
    assert spec["leaseTransitions"] == 0  # created by its first holder
    assert spec["acquireTime"] == first["acquireTime"]  # renewals keep it
    assert MICRO_TIME.match(spec["acquireTime"])
    assert MICRO_TIME.match(spec["renewTime"])
    (standby,) = {a, b} - {leader}
    await eventually(lambda: standby.holder == leader.identity, "the standby sees the leader")


async def test_a_released_lease_is_taken_over_at_once(
    api: FakeKubeApi, elect: Callable[..., LeaderElector], watchdog: Watchdog
) -> None:
    """A 30 s lease: taking over within 15 s proves the release, not the expiry, did it."""
    long = LeaseTimings(lease_duration_s=30, renew_deadline_s=20, retry_period_s=0.2)
    a = elect("a", timings=long)
    await eventually(lambda: a.is_leader, "a leads")
    b = elect("b", timings=long)
    await eventually(lambda: b.holder == "a", "b has seen a's lease")

    stopped = time.monotonic()
    assert await asyncio.to_thread(a.stop)
    assert not a.is_leader
    took_over = await eventually(lambda: b.is_leader, "b leads")

    assert took_over - stopped < 15
    spec = lease(api)
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("b", 1)


async def test_a_dead_leader_is_replaced_once_its_lease_expires(
    api: FakeKubeApi, elect: Callable[..., LeaderElector], watchdog: Watchdog
) -> None:
    a = elect("a")
    await eventually(lambda: a.is_leader, "a leads")
    b = elect("b")
    await eventually(lambda: b.holder == "a", "b has seen a's lease")

    assert await asyncio.to_thread(a.stop, release=False)  # as if the process were killed
    last = lease(api)
    assert last["holderIdentity"] == "a"  # nothing written on the way out
    await eventually(lambda: b.is_leader, "b leads")
    took_over = datetime.now(UTC)

    # b waits a whole lease from when it saw a's last renewal, which came after its renewTime.
    assert (took_over - wall(last["renewTime"])).total_seconds() >= FAST.lease_duration_s
    spec = lease(api)
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("b", 1)


async def test_a_foreign_write_makes_the_leader_step_down(
    api: FakeKubeApi, elect: Callable[..., LeaderElector], watchdog: Watchdog
) -> None:
    """Another writer takes the Lease: the leader's next renewal gets a 409, it reads, steps
    down, and nobody of ours leads until the intruder's lease has expired."""
    elect("a")
    elect("b")
    await one_leader(watchdog)
    stored = api.get(*LEASE)
    assert stored is not None
    spec = {**stored["spec"], "holderIdentity": "intruder", "leaseTransitions": 7}
    written = time.monotonic()
    api.put({**stored, "spec": spec})

    await eventually(lambda: not watchdog.leaders(), "the leader steps down")
    back = await eventually(lambda: len(watchdog.leaders()) == 1, "one of ours leads again")

    assert back - written >= FAST.lease_duration_s  # the intruder's lease, from its write on
    assert lease(api)["leaseTransitions"] == 8


async def test_short_api_failures_do_not_cost_the_leadership(
    api: FakeKubeApi, elect: Callable[..., LeaderElector], watchdog: Watchdog
) -> None:
    leader = await one_leader_of(elect, watchdog)
    acquired = lease(api)["acquireTime"]
    api.fail_next(2)  # fewer than a renew round retries within its deadline
    renewed = lease(api)["renewTime"]
    await eventually(lambda: lease(api)["renewTime"] != renewed, "a renewal after the errors")
    await eventually(lambda: lease(api)["renewTime"] != renewed, "and another")

    assert watchdog.leaders() == [leader]
    assert lease(api)["acquireTime"] == acquired


async def test_an_api_outage_past_the_renew_deadline_costs_the_leadership(
    api: FakeKubeApi, elect: Callable[..., LeaderElector], watchdog: Watchdog
) -> None:
    changes: list[bool] = []
    leader = elect("a", on_change=changes.append)
    await eventually(lambda: leader.is_leader, "a leads")

    await api.stop()
    await eventually(lambda: not leader.is_leader, "a steps down")
    await api.start()  # same port, same store
    await eventually(lambda: leader.is_leader, "a leads again")

    assert changes == [True, False, True]
    spec = lease(api)
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("a", 0)


async def test_churn_never_makes_two_leaders(
    api: FakeKubeApi, elect: Callable[..., LeaderElector], watchdog: Watchdog
) -> None:
    """Three electors racing for one Lease (409s on create and replace), leaders leaving with
    and without releasing, newcomers joining: the watchdog checks every few milliseconds."""
    for name in "abc":
        elect(name)
    for round_ in range(4):
        leader = await one_leader(watchdog)
        assert await asyncio.to_thread(leader.stop, release=round_ % 2 == 0)
        elect(f"new-{round_}")
    last = await one_leader(watchdog)

    assert lease(api)["holderIdentity"] == last.identity
    assert lease(api)["leaseTransitions"] >= 4  # one per hand-over at least


async def test_the_clock_writes_the_lease_times(
    api: FakeKubeApi, elect: Callable[..., LeaderElector]
) -> None:
    moment = datetime(2030, 1, 2, 3, 4, 5, 6, tzinfo=UTC)

    class Frozen:
        def now(self) -> datetime:
            return moment

        def monotonic(self) -> float:
            return time.monotonic()

    leader = elect("a", clock=Frozen())
    await eventually(lambda: leader.is_leader, "a leads")

    spec = lease(api)
    assert spec["acquireTime"] == spec["renewTime"] == "2030-01-02T03:04:05.000006Z"


def test_micro_time_is_utc_with_microseconds() -> None:
    east = timezone(timedelta(hours=2))
    assert micro_time(datetime(2030, 1, 2, 5, 0, 0, 120000, tzinfo=east)) == (
        "2030-01-02T03:00:00.120000Z"
    )


@pytest.mark.parametrize(
    ("timings", "message"),
    [
        pytest.param({"lease_duration_s": 10, "renew_deadline_s": 10}, "lease_duration_s must be",
                     id="lease-not-above-deadline"),
        pytest.param({"renew_deadline_s": 2.4, "retry_period_s": 2}, "retry_period_s \\* 1.2",
                     id="deadline-within-jittered-retry"),
        pytest.param({"lease_duration_s": 0.5, "renew_deadline_s": 0.4, "retry_period_s": 0.1},
                     "at least 1", id="sub-second-lease"),
        pytest.param({"retry_period_s": 0}, "greater than zero", id="no-retry-period"),
    ],
)  # fmt: skip
def test_timings_are_checked_as_client_go_checks_them(
    timings: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        LeaseTimings(**timings)


def test_defaults_are_controller_runtime_s() -> None:
    timings = LeaseTimings()
    assert (timings.lease_duration_s, timings.renew_deadline_s, timings.retry_period_s) == (
        15.0,
        10.0,
        2.0,
    )
    assert timings.request_timeout_s == 5.0


@pytest.fixture
def offline_client() -> Iterator[kubernetes.client.ApiClient]:
    """A client for electors that never reach the point of sending a request."""
    configuration = kubernetes.client.Configuration()
    configuration.host = "http://127.0.0.1:9"
    client = kubernetes.client.ApiClient(configuration)
    yield client
    client.close()  # type: ignore[no-untyped-call]  # untyped client API


def test_the_identity_is_the_hostname_and_a_random_suffix(
    offline_client: kubernetes.client.ApiClient,
) -> None:
    one, two = (LeaderElector(offline_client, NAME, NS) for _ in range(2))
    assert one.identity.startswith(f"{socket.gethostname()}_")
    assert one.identity != two.identity


def test_stop_is_idempotent_and_start_happens_once(
    offline_client: kubernetes.client.ApiClient,
) -> None:
    elector = LeaderElector(offline_client, NAME, NS, timings=FAST)
    assert elector.stop()  # never started
    elector.start()  # already stopped: the thread ends without a request
    assert elector.stop()
    assert elector.stop()
    assert not elector.is_leader
    with pytest.raises(RuntimeError, match="already started"):
        elector.start()
