"""`online-latency-producer`: in-flight truth and each endpoint's predicted TTFT, learned online.

PrepareData reconciles every candidate's latest scrape with the requests this EPP sent there
(`_dispatch_ledger`), feeds the waits that reveals to the per-endpoint speed model
(`_speed_model`), and writes two attributes per candidate: `DispatchedLoad` (scraped queue plus
what was sent since) and `TtftPrediction` (the step under way, the uncached prompt tokens
queued there and this request's own uncached prompt, at that endpoint's learned seconds per
token divided by `1 - rho`, rho the share of the endpoint's time the prefill work sent there
lately takes (`_work_rate`): the scraped queue of a pod that admits every request at its next
step stays short right up to saturation, so without it a pod holding a popular prefix draws
its whole group until its queue explodes). Beside the TTFT, the prediction carries the delay
the request's prefill `t` would add to the requests arriving there meanwhile, `lambda x t^2 /
2` at the endpoint's recent arrivals per second `lambda`, times `delayCostWeight`: ranked on,
it sends long prompts where few requests would queue behind them, the short ones elsewhere.

The request's prompt is `len(prompt_text) / 4` tokens, less the share of its prefix blocks the
`PrefixCacheMatchInfo` attribute says the endpoint holds, plus, for a LoRA adapter the endpoint
is not believed to hold (`_adapter_slots`), `adapterLoadTokens` of work for the load and
`adapterBlockedTokens` more when every adapter slot there is busy (a wait, not work: the ledger
records the prompt and the load only, and learns no speed from a request that waited for an
adapter). PreRequest records the request against its primary target, adds its uncached tokens to
the endpoint's work rate, and observes the prediction for it in upstream's
`inference_objective_request_predicted_ttft_seconds`.

igw's own type, not upstream's `predicted-latency-producer` (which asks a latency-predictor
sidecar running a model trained offline): nothing to deploy or train; the parameters' defaults
serve.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.framework.cycle_state import AttributeKey, CycleState, StateKey
from igw.epp.framework.handle import PluginHandle
from igw.epp.framework.metrics import SchedulerMetrics
from igw.epp.framework.params import Params, decode_params
from igw.epp.framework.results import SchedulingResult
from igw.epp.scheduling.attributes import (
    DISPATCHED_LOAD,
    PREDICTED_TTFT,
    PREFIX_CACHE_MATCH,
    DispatchedLoad,
    TtftPrediction,
)
from igw.epp.scheduling.plugins._adapter_slots import AdapterSlots
from igw.epp.scheduling.plugins._dispatch_ledger import UNTIMED, DispatchLedger
from igw.epp.scheduling.plugins._speed_model import SpeedModel
from igw.epp.scheduling.plugins._work_rate import WorkRate

__all__ = ["OnlineLatencyProducer", "OnlineLatencyProducerParams"]

CHARS_PER_TOKEN = 4


class OnlineLatencyProducerParams(Params, frozen=True):
    step_tokens: int = 256
    """A batch step's fixed costs in a request's TTFT, in tokens of prefill."""
    half_life_seconds: float = 10.0
    """How fast old evidence of an endpoint's speed fades."""
    initial_seconds_per_token: float = 0.0005
    """The pool's speed before any endpoint is fitted."""
    prior_tokens: float = 512.0
    """How much work the pool's speed counts for in each endpoint's estimate."""
    scrape_lag_ms: float = 5.0
    """A request sent this long before a scrape is not counted in it yet (Envoy's hop)."""
    adapter_load_tokens: int = 600
    """A LoRA adapter load, in tokens of prefill (igw-sim's 8B/H100 preset: a 150 ms load, 0.25 ms
    per prefill token)."""
    adapter_eviction_tokens: int = 600
    """Added to a load that would evict the only copy in the pool of another adapter
    (`_adapter_slots`): the load a later request for that adapter will need."""
    adapter_blocked_tokens: int = 8000
    """The wait for a busy adapter slot to drain, in tokens of prefill: large, since the slot
    drains only when every running request of its adapter has finished, which steady traffic
    for that adapter can put off for seconds."""
    rate_window_seconds: float = 2.0
    """Over how long the prefill work sent to each endpoint is averaged (`_work_rate`);
    0 turns the load correction off."""
    delay_cost_weight: float = 1.0
    """How much the delay a request's prefill adds to the requests arriving behind it (its
    prefill time there x the endpoint's arrivals per second x half that time) counts in the
    ranking, beside its own predicted TTFT; needs `rateWindowSeconds` > 0."""


@dataclass(frozen=True, slots=True)
class _Placed:
    by_endpoint: Mapping[str, tuple[int, int]]
    """Endpoint -> (this request's uncached tokens there, the started work it waits for)."""


_PLACED: StateKey[_Placed] = StateKey("online-latency-producer/placed")


def prompt_tokens(request: InferenceRequest) -> int:
    """The prompt's size in tokens, as the prefix index counts them (4 characters each)."""
    size = len(request.prompt_text) or request.size_bytes
    return size // CHARS_PER_TOKEN


class OnlineLatencyProducer:
    type_name: ClassVar[str] = "online-latency-producer"
    produces: ClassVar[tuple[AttributeKey[Any], ...]] = (DISPATCHED_LOAD, PREDICTED_TTFT)
    consumes: ClassVar[tuple[AttributeKey[Any], ...]] = (PREFIX_CACHE_MATCH,)

    def __init__(
        self,
        name: str = type_name,
        *,
        model: SpeedModel | None = None,
        ledger: DispatchLedger | None = None,
        clock: Callable[[], float],
        adapter_costs: tuple[int, int, int] = (600, 600, 8000),
        metrics: SchedulerMetrics | None = None,
        rate: WorkRate | None = None,
        delay_cost_weight: float = 1.0,
    ) -> None:
        self.name = name
        self.rate = rate
        self.delay_weight = delay_cost_weight / 2 if rate is not None else 0.0
        self.model = model if model is not None else SpeedModel()
        self.ledger = ledger if ledger is not None else DispatchLedger()
        self.clock = clock
        self.adapters = AdapterSlots()
        load, eviction, blocked = adapter_costs
        # Per residency: (work the pod does for it, the wait for a busy slot, which is not work).
        self._adapter_cost = {
            "none": (0, 0), "resident": (0, 0), "load": (load, 0),
            "evict": (load + eviction, 0), "blocked": (load, blocked),
        }  # fmt: skip
        self._predicted = (metrics if metrics is not None else SchedulerMetrics()).predicted_ttft()

    @classmethod
    def from_config(cls, name: str, params: Mapping[str, Any], handle: PluginHandle) -> Self:
        p = decode_params(params, OnlineLatencyProducerParams)
        model = SpeedModel(
            initial=p.initial_seconds_per_token, step_tokens=p.step_tokens,
            half_life_s=p.half_life_seconds, prior_tokens=p.prior_tokens,
        )  # fmt: skip
        return cls(
            name, model=model, ledger=DispatchLedger(lag_s=p.scrape_lag_ms / 1000),
            clock=handle.clock,
            adapter_costs=(
                p.adapter_load_tokens, p.adapter_eviction_tokens, p.adapter_blocked_tokens
            ),
            metrics=handle.metrics,
            rate=WorkRate(window_s=p.rate_window_seconds) if p.rate_window_seconds > 0 else None,
            delay_cost_weight=p.delay_cost_weight,
        )  # fmt: skip

    def _learn(self, endpoints: Sequence[EndpointState], now: float) -> None:
        """Adapter residency and the waits each endpoint's new scrape reveals."""
        ledger, model, observe = self.ledger, self.model, self.adapters.observe
        new_scrape = ledger.has_new_scrape
        for e in endpoints:
            observe(e)
            if new_scrape(e):
                name = e.endpoint.name
                for wait in ledger.reconcile(e, now, model.seconds_per_token(name)):
                    model.observe(name, wait.seconds, wait.ahead_tokens, now)

    def prepare_data(
        self, request: InferenceRequest, state: CycleState, endpoints: Sequence[EndpointState]
    ) -> None:
        now = self.clock()
        self._learn(endpoints, now)
        tokens = prompt_tokens(request)
        matches = state.attributes(PREFIX_CACHE_MATCH)
        step = self.model.step_tokens
        speeds, pool, load_of = self.model.speeds(), self.model.pool(), self.ledger.load
        rates = self.rate.rates if self.rate is not None else None
        delay_weight, costs = self.delay_weight, self._adapter_cost
        residencies = self.adapters.residencies(endpoints, request.target_model)
        loads: dict[str, DispatchedLoad] = {}
        predictions: dict[str, TtftPrediction] = {}
        placed: dict[str, tuple[int, int]] = {}
        for e, residency in zip(endpoints, residencies, strict=True):
            name = e.endpoint.name
            match = matches.get(name) if matches else None
            own = tokens if match is None else round(tokens * (1.0 - match.ratio))
            work, slot_wait = costs[residency]
            own += work
            speed = speeds.get(name, pool)
            load = loads[name] = load_of(e, now, speed, tokens)
            delay = 0.0
            if rates is not None:
                slowdown, arrivals = rates(name, now, speed)
                speed *= slowdown
                prefill = speed * own
                delay = delay_weight * arrivals * prefill * prefill
            ahead = load.ahead_tokens
            # What a request waits for there is the step under way (module `_speed_model`).
            placed[name] = (own, load.started_tokens if not work else UNTIMED)
            predictions[name] = TtftPrediction(
                speed * (step + ahead + own + slot_wait), speed, ahead, own + slot_wait,
                load.dispatched, residency, delay,
            )  # fmt: skip
        state.set_attributes(DISPATCHED_LOAD, loads)
        state.set_attributes(PREDICTED_TTFT, predictions)
        state.write(_PLACED, _Placed(placed))

    def pre_request(
        self, request: InferenceRequest, state: CycleState, result: SchedulingResult
    ) -> None:
        if not result.targets:
            return
        name = result.targets[0].endpoint.name
        prediction = state.attributes(PREDICTED_TTFT).get(name)
        if prediction is not None:
            model = request.incoming_model or request.target_model
            self._predicted.labels(model, request.target_model).observe(prediction.ttft_s)
        known = state.read(_PLACED)
        placed = known.by_endpoint.get(name) if known is not None else None
        tokens, ahead = placed if placed is not None else (prompt_tokens(request), 0)
        now = self.clock()
        self.ledger.dispatch(name, now, tokens, ahead)
        if self.rate is not None:
            self.rate.add(name, tokens, now)
        self.adapters.sent(name, request.target_model)
