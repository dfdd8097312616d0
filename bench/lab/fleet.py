"""The lab's simulated fleet in one process, with the omniscient router beside the engines.

Run as `python -m bench.lab.fleet --config sim.yaml --extproc-port P --control-port C`. It serves:

* every pod of the `igw-sim --config` file (`igw.sim.cli.parse_args` and `igw.sim.fleet.Fleet`,
  exactly what `igw-sim` runs), on the caller's ports;
* the **omniscient router**: a plaintext ext_proc server (request side, FULL_DUPLEX_STREAMED
  body, as the EPP's filter) that reads each request's body, tokenizes it as the pods will
  (`igw.sim.tokenizer.encode_chat`), asks every engine for its true state for that prompt
  (`Engine.routing_state`: cached prefix tokens, queued prefill work, decoding batch, free KV
  blocks, adapter residency) and sets `x-gateway-destination-endpoint` for Envoy's ORIGINAL_DST
  cluster, as the EPP does. Only the decision differs from igw's path;
* a control endpoint: `GET /state` answers every pod's counters and queue as JSON (the harness
  polls it for per-pod load over time and prefix-cache hit rates), `GET /picks` the omniscient
  router's decisions per pod.

The omniscient picker's cost for a pod is the wall-clock time to this request's first token if
it went there now, from the engine's own cost model (`TimingProfile`, divided by the pod's
time scale, so a slow pod costs more): the prefill work queued ahead plus this request's
uncached prompt, in steps of `max_num_batched_tokens` each paying the prefill overhead and the
running batch's decode; plus a non-resident adapter's load, plus a full recompute when the
request's KV blocks do not fit (a preemption). A prefix counts as cached when the engine holds
it, when a request waiting there shares it, or when a request the picker routed there and the
engine has not received yet (Envoy's hop) does; those routed requests count as queued work.
Two costs to later requests are added: the delay its uncached prefill imposes on them (all of
it for the request queued next, half of it on average for each request the pod's recent arrival
rate brings while it runs), and half the prefill of the cached prefix blocks its allocation
would evict. It is greedy and does not plan ahead: the practical upper bound, not a proven
optimum.

Stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import signal
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import uvloop
from aiohttp import web
from envoy.service.ext_proc.v3 import external_processor_pb2 as ext_proc_pb2

from igw.common.envoy import HeaderChanges, Phase, body_chunks, headers_response
from igw.sim import tokenizer
from igw.sim.cli import parse_args
from igw.sim.engine import Engine, EngineConfig, GenerationRequest
from igw.sim.engine.handle import Handle
from igw.sim.fleet import Fleet

SERVICE = "envoy.service.ext_proc.v3.ExternalProcessor"
DESTINATION = "x-gateway-destination-endpoint"
EVICTION_REUSE = 0.5
"""Share of evicted cached prefix blocks counted as recomputed later (LRU evicts the coldest)."""
RATE_WINDOW_S = 5.0
PENDING_EXPIRY_S = 2.0
"""A routed request the engine never received (the client went away) stops counting then."""


class ObservedEngine(Engine):
    """An `Engine` that tells the picker when a routed request has arrived."""

    def __init__(self, config: EngineConfig) -> None:
        super().__init__(config)
        self.pending: collections.deque[tuple[float, int, tuple[int, ...]]] = collections.deque()
        """(wall time routed, uncached prompt tokens, block hashes) of each request routed
        here that has not arrived yet."""

    def submit(self, request: GenerationRequest) -> Handle:
        handle = super().submit(request)
        if self.pending:
            self.pending.popleft()
        return handle

    def pending_work(self, now: float, hashes: tuple[int, ...]) -> tuple[int, int, int]:
        """Requests routed here and not arrived yet, their uncached prompt tokens, and how
        many leading blocks of `hashes` they share (computed before this request runs)."""
        while self.pending and now - self.pending[0][0] > PENDING_EXPIRY_S:
            self.pending.popleft()
        if not self.pending:
            return 0, 0, 0
        ahead = {h for _, _, chain in self.pending for h in chain}
        shared = next((i for i, h in enumerate(hashes) if h not in ahead), len(hashes))
        return len(self.pending), sum(tokens for _, tokens, _ in self.pending), shared


@dataclass(slots=True)
class Target:
    name: str
    address: str
    engine: ObservedEngine
    picks: int = 0
    recent: collections.deque[float] = field(default_factory=collections.deque)
    """Wall times of the picks of the last `RATE_WINDOW_S` seconds."""

    def arrival_rate(self, now: float) -> float:
        """Requests per wall second routed here lately."""
        while self.recent and now - self.recent[0] > RATE_WINDOW_S:
            self.recent.popleft()
        return len(self.recent) / RATE_WINDOW_S


@dataclass(slots=True)
class Picker:
    targets: list[Target]
    decisions: int = 0
    _last: dict[str, tuple[int, tuple[int, ...]]] = field(default_factory=dict)
    """Per pod, the last costed request's uncached tokens and block hashes."""

    def cost(
        self,
        target: Target,
        tokens: tuple[int, ...],
        lora: str | None,
        out: int,
        hashes: dict[str | None, tuple[int, ...]],
    ) -> float:
        """Wall seconds this request costs on `target` (module docstring)."""
        engine = target.engine
        config = engine.config
        timing = config.timing
        state = engine.routing_state(tokens, lora, block_hashes=hashes.get(lora))
        hashes[lora] = state.block_hashes
        pending_n, pending_tokens, pending_shared = engine.pending_work(
            time.monotonic(), state.block_hashes
        )
        hit = max(
            state.cached_tokens,
            state.queued_prefix_tokens,
            min(pending_shared * config.block_size, len(tokens) - 1),
        )
        uncached = len(tokens) - hit
        work = state.queued_prefill_tokens + pending_tokens + uncached
        steps = max(1, math.ceil(work / config.max_num_batched_tokens))
        decode = timing.decode_seconds(state.decoding + pending_n, state.context_tokens)
        seconds = work * timing.prefill_per_token_s + steps * (timing.prefill_overhead_s + decode)
        if not state.adapter_ready:
            seconds += config.lora_load_latency_s
        if state.adapter_blocked:  # until a running adapter's requests finish: about one answer
            seconds += out * timing.decode_seconds(state.decoding, state.context_tokens)
        needed = math.ceil((len(tokens) + out) / config.block_size) - hit // config.block_size
        if needed > state.free_blocks:
            seconds += timing.prefill_seconds(len(tokens))
        # Blocks taken from the cached LRU evict prefixes a later request may have hit.
        evicted = min(
            max(0, needed - (state.free_blocks - state.cached_blocks)), state.cached_blocks
        )
        seconds += EVICTION_REUSE * evicted * config.block_size * timing.prefill_per_token_s
        # Waiting beyond the batch limit: a whole request's time per request over it.
        over = state.running + state.waiting + pending_n + 1 - config.max_num_seqs
        if over > 0:
            seconds += over * timing.prefill_seconds(len(tokens))
        # The prefill this request adds delays the requests behind it: the one queued next
        # (its whole length) and those arriving while it runs (half of it each, on average, at
        # the pod's recent arrival rate in simulated seconds).
        added = uncached * timing.prefill_per_token_s
        arrivals = target.arrival_rate(time.monotonic()) / config.time_scale
        seconds += added + arrivals * added * added / 2
        self._last[target.name] = (uncached, state.block_hashes)
        return seconds / config.time_scale

    def pick(self, body: bytes) -> Target:
        request = json.loads(body)
        messages = request.get("messages")
        if isinstance(messages, list):
            tokens = tokenizer.encode_chat(messages)
        else:
            tokens = tokenizer.encode(str(request.get("prompt", "")))
        model = request.get("model")
        out = int(request.get("max_tokens") or 256)
        best: Target | None = None
        best_cost = math.inf
        hashes: dict[str | None, tuple[int, ...]] = {}
        for target in self.targets:
            known = target.engine.known_loras()
            lora = model if isinstance(model, str) and model in known else None
            cost = self.cost(target, tokens, lora, out, hashes)
            if cost < best_cost or (
                cost == best_cost and best is not None and target.picks < best.picks
            ):
                best, best_cost = target, cost
        if best is None:
            raise RuntimeError("no pods")
        uncached, chain = self._last[best.name]
        best.engine.pending.append((time.monotonic(), uncached, chain))
        best.picks += 1
        best.recent.append(time.monotonic())
        self.decisions += 1
        return best

    async def process(
        self, requests: AsyncIterator[Any], _context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        """One ext_proc stream: hold the headers until the body ends, then route."""
        chunks: list[bytes] = []
        async for message in requests:
            kind = message.WhichOneof("request")
            if kind == "request_headers" and message.request_headers.end_of_stream:
                yield headers_response(Phase.REQUEST)  # no body to route on: Envoy's default
                return
            if kind == "request_body":
                chunks.append(message.request_body.body)
                if message.request_body.end_of_stream:
                    body = b"".join(chunks)
                    target = self.pick(body)
                    changes = HeaderChanges(set=((DESTINATION, target.address),))
                    yield headers_response(Phase.REQUEST, changes, clear_route_cache=True)
                    for reply in body_chunks(Phase.REQUEST, body, end_of_stream=True):
                        yield reply
                    return


def _state(fleet: Fleet) -> list[dict[str, Any]]:
    out = []
    for pod in fleet.pods:
        snap = pod.engine.snapshot()
        out.append(
            {
                "pod": pod.settings.pod_name,
                "port": pod.port,
                "running": snap.running,
                "waiting": snap.waiting,
                "kv_usage": snap.kv_cache_usage,
                "prefix_queries": snap.prefix_cache_queries,
                "prefix_hits": snap.prefix_cache_hits,
                "prompt_tokens": snap.prompt_tokens,
                "generation_tokens": snap.generation_tokens,
                "preemptions": snap.preemptions,
            }
        )
    return out


async def serve(argv: Sequence[str], extproc_port: int, control_port: int) -> None:
    _config, plans = parse_args(argv)
    fleet = Fleet(plans, tracer_provider=None, engine_factory=ObservedEngine)
    await fleet.start()
    targets = []
    for pod in fleet.pods:
        if not isinstance(pod.engine, ObservedEngine):
            raise TypeError("the fleet's engines must be ObservedEngines")
        targets.append(Target(pod.settings.pod_name, f"127.0.0.1:{pod.port}", pod.engine))
    picker = Picker(targets)

    method = grpc.stream_stream_rpc_method_handler(
        picker.process,
        request_deserializer=ext_proc_pb2.ProcessingRequest.FromString,
        response_serializer=ext_proc_pb2.ProcessingResponse.SerializeToString,
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler(SERVICE, {"Process": method})]
    )
    server.add_insecure_port(f"127.0.0.1:{extproc_port}")
    await server.start()

    async def state(_request: web.Request) -> web.Response:
        return web.json_response({"at": time.monotonic(), "pods": _state(fleet)})

    async def picks(_request: web.Request) -> web.Response:
        return web.json_response({t.name: t.picks for t in targets})

    app = web.Application()
    app.router.add_get("/state", state)
    app.router.add_get("/picks", picks)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", control_port).start()

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop(0.5)
        await runner.cleanup()
        await fleet.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="igw-sim --config YAML")
    parser.add_argument("--extproc-port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    args = parser.parse_args()
    sim_argv = ["--config", args.config, "--tracing=false"]
    uvloop.run(serve(sim_argv, args.extproc_port, args.control_port))


if __name__ == "__main__":
    main()
