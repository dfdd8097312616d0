"""The lab's fleet in one process on a virtual clock: routing policies compared in seconds of CPU.

Run as `python -m bench.lab.virtual --workloads slow-pod,multi-turn --seeds 1,2`. The same
workloads, plans (requests and Poisson arrivals per load step) and engines (`igw.sim.engine`, the
lab's pods with their speeds, KV sizes and adapters) as `python -m bench.lab`, but no Envoy, no
HTTP and no processes: each request is routed by a picker called directly and submitted to its
engine, and the event loop's clock is virtual (it jumps to the next timer whenever nothing is
ready). Latencies are therefore those of the simulated GPUs alone, exact and repeatable whatever
else the machine runs; what the real lab adds (Envoy's hop, scrape timing jitter, the EPP's own
latency) is left out, so use this to compare routing policies and the real lab for the verdicts.

Pickers: `omniscient` (`bench.lab.fleet.Picker`, the engines' true state), `least-request`
(Envoy's LEAST_REQUEST: the fewer outstanding requests of two pods drawn at random), and the
EPP's own scheduler and request-control hooks built from a configuration: `igw` (upstream's default
profile) and `igw-learned` (the `learned-latency` profile), over endpoint states scraped from the
engines every 50 ms. Prints the p90 TTFT of each load step per (workload, router, seed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import selectors
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.lab.fleet import ObservedEngine, Picker, Target
from bench.lab.plan import Plan, make_plan
from bench.lab.settings import PRESET, parse_args
from bench.lab.workloads import WORKLOADS
from igw.epp.config import PROFILES, EppConfig, load_config
from igw.epp.endpoints import Endpoint, EndpointState, InferenceRequest, Metrics
from igw.epp.framework import CycleState, PluginHandle
from igw.epp.parsers import OpenAIParser
from igw.sim import tokenizer
from igw.sim.engine import EngineConfig, GenerationRequest

__all__ = ["VirtualLoop", "run"]

SCRAPE_S = 0.05
CONFIGS: dict[str, str | None] = {"igw": None, "igw-learned": PROFILES["learned-latency"]}


class _Selector(selectors.SelectSelector):
    """Never waits: a timeout advances the virtual clock instead (there is no I/O to wait for)."""

    def __init__(self, clock: list[float]) -> None:
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None:
            raise RuntimeError("the virtual loop has nothing scheduled and would wait forever")
        self._clock[0] += max(0.0, timeout)
        return []


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.clock = [1000.0]
        super().__init__(selector=_Selector(self.clock))

    def time(self) -> float:
        return self.clock[0]


def _engines(workload: str, pods: int, time_scale: float) -> list[tuple[ObservedEngine, list[str]]]:
    out = []
    for extra in WORKLOADS[workload].pods(pods):
        options: dict[str, Any] = {"time_scale": time_scale * float(str(extra.get("speed", 1)))}
        if "num-gpu-blocks" in extra:
            options["num_gpu_blocks"] = extra["num-gpu-blocks"]
            options["max_model_len"] = int(str(extra["num-gpu-blocks"])) * 16
        if "max-loras" in extra:
            options["max_loras"] = extra["max-loras"]
        modules = extra.get("lora-modules", [])
        adapters = [str(m).split("=")[0] for m in modules] if isinstance(modules, list) else []
        out.append((ObservedEngine(EngineConfig.from_preset(PRESET, **options)), adapters))
    return out


class _Scheduled:
    """The EPP's hooks and scheduler over endpoint states scraped from the engines."""

    def __init__(self, engines: Sequence[ObservedEngine], config: EppConfig) -> None:
        self.engines, self.config = engines, config
        self.parser = OpenAIParser()
        self.states = self._scrape()

    def _scrape(self) -> list[EndpointState]:
        now, out = time.monotonic(), []
        for i, engine in enumerate(self.engines):
            s = engine.snapshot()
            metrics = Metrics(
                waiting=s.waiting, running=s.running, kv_cache_usage=s.kv_cache_usage,
                active_models=frozenset(s.running_loras), waiting_models=frozenset(s.waiting_loras),
                max_active_models=s.max_loras, updated_at=now,
            )  # fmt: skip
            out.append(EndpointState(Endpoint(f"pod-{i}", "127.0.0.1", 8000 + i), metrics))
        return out

    async def scrape_forever(self) -> None:
        while True:
            await asyncio.sleep(SCRAPE_S)
            self.states = self._scrape()

    def pick(self, n: int, body: bytes) -> int:
        parsed = self.parser.parse("/v1/chat/completions", body)
        request = InferenceRequest(
            f"r{n}", parsed.model, {}, prompt_text=parsed.prompt_text, size_bytes=len(body),
            incoming_model=parsed.model,
        )  # fmt: skip
        state, hooks = CycleState(), self.config.request_control
        hooks.prepare_data(request, state, self.states)
        result = self.config.scheduler.schedule(request, self.states, state)
        hooks.pre_request(request, state, result)
        return int(result.targets[0].endpoint.name.split("-")[1])


class _LeastRequest:
    """Envoy's LEAST_REQUEST over equal weights: of two pods drawn at random, the one with fewer
    requests outstanding (sent and not yet answered in full)."""

    def __init__(self, pods: int, seed: int) -> None:
        self.outstanding = [0] * pods
        self.rng = random.Random(seed)  # noqa: S311 - load balancing, not security

    def pick(self, _n: int, _body: bytes) -> int:
        a, b = self.rng.randrange(len(self.outstanding)), self.rng.randrange(len(self.outstanding))
        pod = a if self.outstanding[a] <= self.outstanding[b] else b
        self.outstanding[pod] += 1
        return pod

    def done(self, pod: int) -> None:
        self.outstanding[pod] -= 1


def _nothing(_pod: int) -> None:
    """A request ended: only `least-request` counts that."""


async def _step(
    plan: Plan,
    rung: int,
    engines: Sequence[ObservedEngine],
    pick: Callable[[int, bytes], int],
    done: Callable[[int], None],
) -> float:
    """One load step; its p90 TTFT in milliseconds."""
    lo, hi = plan.slices[rung]
    ttfts: list[float] = []

    async def one(n: int, body: bytes, max_tokens: int) -> None:
        sent = time.monotonic()
        doc = json.loads(body)
        model = doc["model"]
        lora = model if model in engines[0].known_loras() else None
        pod = pick(n, body)
        handle = engines[pod].submit(
            GenerationRequest(f"r{n}", tokenizer.encode_chat(doc["messages"]), max_tokens, lora)
        )
        first = True
        async for _ in handle:
            if first:
                ttfts.append(time.monotonic() - sent)
                first = False
        done(pod)

    start, tasks = time.monotonic(), []
    for n, (request, at) in enumerate(zip(plan.requests[lo:hi], plan.arrivals[rung], strict=True)):
        await asyncio.sleep(max(0.0, start + at - time.monotonic()))
        tasks.append(asyncio.create_task(one(lo + n, request.body, request.max_tokens)))
    await asyncio.gather(*tasks)
    ordered = sorted(ttfts)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)] * 1000


async def run(workload: str, router: str, seed: int, time_scale: float = 0.5) -> list[float]:
    """Every load step of `workload` through `router`; the p90 TTFTs (ms)."""
    settings = parse_args(["--seed", str(seed), "--time-scale", str(time_scale)])
    plan = make_plan(WORKLOADS[workload], settings)
    pairs = _engines(workload, settings.pods, time_scale)
    engines = [engine for engine, _ in pairs]
    for engine, adapters in pairs:
        await engine.start()
        for adapter in adapters:
            await engine.load_lora(adapter)
    scraper = None
    pick: Callable[[int, bytes], int]
    done: Callable[[int], None] = _nothing
    if router == "least-request":
        least = _LeastRequest(len(engines), seed)
        pick, done = least.pick, least.done
    elif router == "omniscient":
        picker = Picker([Target(f"pod-{i}", "", e) for i, e in enumerate(engines)])
        pick = lambda _n, body: int(picker.pick(body).name.split("-")[1])  # noqa: E731 - one line
    else:
        handle = PluginHandle(clock=time.monotonic, rng=random.Random(seed))  # noqa: S311 - ties
        scheduled = _Scheduled(engines, load_config(CONFIGS[router], handle=handle))
        scraper = asyncio.create_task(scheduled.scrape_forever())
        pick = scheduled.pick
    try:
        return [await _step(plan, r, engines, pick, done) for r in range(len(plan.slices))]
    finally:
        if scraper is not None:
            scraper.cancel()
        for engine in engines:
            await engine.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lab.virtual", description=__doc__)
    parser.add_argument("--workloads", default="slow-pod,multi-turn,sharegpt")
    parser.add_argument("--routers", default="igw,igw-learned,omniscient")
    parser.add_argument("--seeds", default="1")
    args = parser.parse_args()
    loop = VirtualLoop()
    time.monotonic = loop.time  # the engines' and the plugins' clocks: virtual too
    for workload in args.workloads.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            for router in args.routers.split(","):
                p90s = loop.run_until_complete(run(workload, router, seed))
                cells = " ".join(f"{p:7,.0f}" for p in p90s)
                print(f"{workload:14} seed {seed}  {router:12} p90 TTFT ms per step: {cells}")


if __name__ == "__main__":
    main()
