"""`online-latency-producer` with `predicted-ttft-scorer` on a simulated fleet of known speeds.

The fleet: model servers that work in steps as vLLM does (a step takes every waiting request,
up to a token budget, and lasts `speed` seconds per token plus an overhead; requests arriving
meanwhile wait for the next step), scraped every 50 ms for their waiting and running counts as
the EPP's data layer does. The picker is the scorer's best endpoint. What a user would notice:
the slow pod is found and given less within seconds, and a pod that slows down later loses its
share again.
"""

import collections
from dataclasses import dataclass, field

import pytest

from igw.epp.endpoints import EndpointState
from igw.epp.framework import CycleState, ProfileResult, SchedulerMetrics, SchedulingResult
from igw.epp.scheduling import (
    DISPATCHED_LOAD,
    PREDICTED_TTFT,
    PREFIX_CACHE_MATCH,
    PrefixCacheMatchInfo,
)
from igw.epp.scheduling.plugins import OnlineLatencyProducer, PredictedTtftScorer
from igw.epp.scheduling.plugins._work_rate import WorkRate
from igw.epp.testing.builders import FakeClock, endpoint, request

FAST, SLOW = 0.0005, 0.00125
TOKENS = 100
ARRIVAL_S = 0.02  # 5,000 prompt tokens/s offered; 4 pods at full speed serve 8,000
SCRAPE_S = 0.05
TICK_S = 0.005
BUDGET = 2048
OVERHEAD_TOKENS = 100  # a step's fixed cost, in tokens' worth of time


@dataclass
class Pod:
    name: str
    speed: float
    queue: collections.deque[float] = field(default_factory=collections.deque)
    busy_until: float = 0.0
    scraped: EndpointState = field(init=False)

    def __post_init__(self) -> None:
        self.scraped = endpoint(self.name, updated_at=0.0)

    def run(self, now: float) -> None:
        if self.busy_until > now or not self.queue:
            return
        batch = 0
        while self.queue and (batch + 1) * TOKENS <= BUDGET:
            self.queue.popleft()
            batch += 1
        self.busy_until = now + self.speed * (OVERHEAD_TOKENS + batch * TOKENS)

    def scrape(self, now: float) -> None:
        running = 1 if self.busy_until > now else 0
        self.scraped = endpoint(self.name, waiting=len(self.queue), running=running, updated_at=now)


@dataclass
class Fleet:
    pods: list[Pod]
    clock: FakeClock = field(default_factory=lambda: FakeClock(0.0))
    producer: OnlineLatencyProducer = field(init=False)
    picks: collections.Counter[str] = field(default_factory=collections.Counter)

    def __post_init__(self) -> None:
        self.producer = OnlineLatencyProducer(clock=self.clock)

    def run(self, seconds: float) -> None:
        """Runs the fleet; `picks` counts the requests each pod got in this run."""
        self.picks.clear()
        scorer = PredictedTtftScorer()
        end = self.clock.now + seconds
        next_arrival = next_scrape = self.clock.now
        while self.clock.now < end:
            now = self.clock.now = self.clock.now + TICK_S
            for pod in self.pods:
                pod.run(now)
            if now >= next_scrape:
                next_scrape += SCRAPE_S
                for pod in self.pods:
                    pod.scrape(now)
            while now >= next_arrival:
                next_arrival += ARRIVAL_S
                self._place(scorer, now)

    def _place(self, scorer: PredictedTtftScorer, now: float) -> None:
        candidates = [pod.scraped for pod in self.pods]
        state = CycleState()
        req = request(prompt="x" * TOKENS * 4)
        self.producer.prepare_data(req, state, candidates)
        scores = scorer.score(req, state, candidates)
        best = max(range(len(candidates)), key=lambda i: scores[i])
        self.producer.pre_request(
            req, state, SchedulingResult({"d": ProfileResult((candidates[best],))}, "d")
        )
        self.pods[best].queue.append(now)
        self.picks[self.pods[best].name] += 1

    def speed(self, name: str) -> float:
        return self.producer.model.seconds_per_token(name)


def fleet(*speeds: float) -> Fleet:
    return Fleet([Pod(f"pod-{i}", s) for i, s in enumerate(speeds)])


def test_a_slow_pod_is_found_within_seconds_and_given_less() -> None:
    f = fleet(FAST, FAST, FAST, SLOW)
    f.run(5.0)
    f.run(5.0)
    slow, fast = f.speed("pod-3"), max(f.speed(f"pod-{i}") for i in range(3))
    # Idle pods start requests at once, so waits show a pod's speed only in part: the ranking
    # is what counts.
    assert slow > 1.3 * fast
    assert f.picks["pod-3"] < 0.6 * min(f.picks[f"pod-{i}"] for i in range(3))


def test_a_pod_that_slows_down_later_loses_its_share_again() -> None:
    f = fleet(FAST, FAST, FAST, FAST)
    f.run(10.0)
    before = f.picks["pod-0"]
    f.pods[0].speed = SLOW  # a throttled GPU
    f.run(5.0)
    f.run(5.0)
    assert f.speed("pod-0") > 1.3 * max(f.speed(f"pod-{i}") for i in range(1, 4))
    assert f.picks["pod-0"] < 0.6 * before / 2  # per 5 s: well under its old share


def test_writes_the_in_flight_correction_and_the_prediction_for_every_candidate() -> None:
    clock = FakeClock(10.0)
    metrics = SchedulerMetrics()
    producer = OnlineLatencyProducer(clock=clock, metrics=metrics)
    pods = [endpoint("a", waiting=0, updated_at=9.99), endpoint("b", waiting=0, updated_at=9.99)]
    for i in range(3):  # a burst inside one scrape interval: all to "a"
        state = CycleState()
        producer.prepare_data(request(prompt="y" * 400), state, pods)
        producer.pre_request(
            request(request_id=f"r{i}"),
            state,
            SchedulingResult({"d": ProfileResult((pods[0],))}, "d"),
        )
    state = CycleState()
    state.set_attribute(PREFIX_CACHE_MATCH, "b", PrefixCacheMatchInfo(3, 4))
    producer.prepare_data(request(prompt="y" * 400), state, pods)
    loads, predictions = state.attributes(DISPATCHED_LOAD), state.attributes(PREDICTED_TTFT)
    assert (loads["a"].dispatched, loads["a"].queued_tokens) == (3, 300)
    assert (loads["b"].dispatched, loads["b"].queued_tokens) == (0, 0)
    # "b" holds 3/4 of the prompt and nothing is queued there: it is predicted far sooner.
    assert predictions["b"].uncached_tokens == 25
    assert predictions["b"].ttft_s < predictions["a"].ttft_s / 2
    # Each dispatched request's prediction is in upstream's histogram.
    count = metrics.registry.get_sample_value(
        "inference_objective_request_predicted_ttft_seconds_count",
        {"model_name": "base-model", "target_model_name": "base-model"},
    )
    assert count == 3
    assert PredictedTtftScorer().score(request(), state, pods) == pytest.approx(
        [predictions["b"].ttft_s / predictions["a"].ttft_s, 1.0]
    )


def test_a_request_for_a_resident_adapter_is_predicted_sooner_than_a_load() -> None:
    producer = OnlineLatencyProducer(clock=FakeClock(10.0), adapter_costs=(300, 0, 2000))
    pods = [
        endpoint("a", active=["sql-lora"], max_lora=1, updated_at=9.99),
        endpoint("b", active=["chat-lora"], max_lora=1, updated_at=9.99),
    ]
    state = CycleState()
    producer.prepare_data(request("sql-lora", prompt="z" * 400), state, pods)
    predictions = state.attributes(PREDICTED_TTFT)
    assert (predictions["a"].adapter, predictions["b"].adapter) == ("resident", "blocked")
    assert predictions["b"].uncached_tokens == 100 + 300 + 2000
    assert predictions["a"].ttft_s < predictions["b"].ttft_s


def test_a_load_that_evicts_the_only_copy_of_another_adapter_costs_more() -> None:
    producer = OnlineLatencyProducer(clock=FakeClock(10.0), adapter_costs=(300, 500, 2000))
    pods = [
        endpoint("a", active=["x"], max_lora=1, updated_at=9.99),
        endpoint("b", active=["y"], max_lora=1, updated_at=9.99),
        endpoint("c", active=["x"], max_lora=1, updated_at=9.99),
        endpoint("d", active=["z"], max_lora=1, updated_at=9.99),
    ]
    producer.prepare_data(request("x", prompt="q"), CycleState(), pods)  # learns the adapters
    idle = [endpoint(p.endpoint.name, max_lora=1, updated_at=9.99) for p in pods[:3]]
    state = CycleState()
    producer.prepare_data(request("z", prompt="q" * 400), state, idle)
    predictions = state.attributes(PREDICTED_TTFT)
    assert [predictions[n].adapter for n in "abc"] == ["load", "evict", "load"]
    assert predictions["a"].uncached_tokens == 100 + 300
    assert predictions["b"].uncached_tokens == 100 + 300 + 500
    assert predictions["b"].ttft_s > predictions["a"].ttft_s


def test_an_adapter_wait_is_predicted_but_only_the_load_is_work_at_the_pod() -> None:
    """Sent to `b`, the request is work there for its prompt and the adapter load, not for the
    wait for a busy slot (no compute), and its wait does not teach `b`'s prefill speed."""
    clock = FakeClock(10.0)
    producer = OnlineLatencyProducer(clock=clock, adapter_costs=(300, 0, 2000))
    a = endpoint("a", active=["sql-lora"], max_lora=1, updated_at=9.99)
    b = endpoint("b", active=["chat-lora"], max_lora=1, updated_at=9.99)
    state = CycleState()
    producer.prepare_data(request("sql-lora", prompt="z" * 400), state, [a, b])
    assert state.attributes(PREDICTED_TTFT)["b"].adapter == "blocked"
    producer.pre_request(
        request("sql-lora"), state, SchedulingResult({"d": ProfileResult((b,))}, "d")
    )
    assert producer.ledger.load(b, clock.now, 0.001).ahead_tokens == 100 + 300
    for at, waiting in ((10.05, 1), (10.2, 0)):  # still waiting for the slot, then gone
        clock.now = at
        scrape = endpoint("b", active=["sql-lora"], waiting=waiting, max_lora=1, updated_at=at)
        producer.prepare_data(request(prompt="z"), CycleState(), [scrape])
    assert producer.ledger.load(scrape, clock.now, 0.001).started_tokens == 100 + 300
    assert producer.model.pool() == producer.model.initial  # nothing fitted


def test_a_pod_holding_the_prefix_keeps_it_until_the_load_it_is_given_nears_saturation() -> None:
    """The prefix holder wins at light load; sent a pod's whole capacity within the rate window
    it loses to an idle pod that would have to compute the prompt (`_work_rate`)."""
    clock = FakeClock(10.0)
    rate = WorkRate(window_s=2.0)
    producer = OnlineLatencyProducer(clock=clock, rate=rate)
    pods = [endpoint("hot", updated_at=9.99), endpoint("cold", updated_at=9.99)]

    def winner() -> str:
        state = CycleState()
        state.set_attribute(PREFIX_CACHE_MATCH, "hot", PrefixCacheMatchInfo(9, 10))
        producer.prepare_data(request(prompt="p" * 4000), state, pods)
        scores = PredictedTtftScorer().score(request(), state, pods)
        return "hot" if scores[0] >= scores[1] else "cold"

    assert winner() == "hot"
    sent = 0
    while winner() == "hot" and sent < 100:
        rate.add("hot", 200, clock.now)
        clock.now += 0.05
        sent += 1
    # 200 tokens each 50 ms is 4,000 tokens/s: twice what a pod at the default speed computes.
    assert 3 <= sent < 100


def test_a_long_prompt_goes_where_fewer_requests_would_wait_behind_it() -> None:
    """Two idle pods of one speed; one is sent many short requests a second, the other few. A
    long prompt is predicted the same TTFT on both, but on the busy one its prefill would hold up
    the requests arriving meanwhile: it goes to the quiet one. A short prompt hardly delays
    delays the arrivals little, and both pods rank within 10 % for it."""
    clock = FakeClock(10.0)
    rate = WorkRate(window_s=2.0)
    producer = OnlineLatencyProducer(clock=clock, rate=rate)
    pods = [endpoint("busy", updated_at=9.99), endpoint("quiet", updated_at=9.99)]
    for i in range(100):  # 50 tiny requests a second on `busy`, 2 on `quiet`
        rate.add("busy", 1, 8.0 + i * 0.02)
    for i in range(4):
        rate.add("quiet", 1, 8.0 + i * 0.5)

    def scores(prompt_tokens: int) -> list[float]:
        state = CycleState()
        producer.prepare_data(request(prompt="p" * 4 * prompt_tokens), state, pods)
        predictions = state.attributes(PREDICTED_TTFT)
        assert predictions["busy"].ttft_s == pytest.approx(predictions["quiet"].ttft_s, rel=0.05)
        return list(PredictedTtftScorer().score(request(), state, pods))

    long = scores(4000)
    assert long[1] == 1.0
    assert long[0] < 0.7
    short = scores(50)
    assert short[0] > 0.9
