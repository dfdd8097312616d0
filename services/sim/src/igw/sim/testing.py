"""Test doubles for the HTTP layer: a scripted engine, and a pod served on a free port.

`FakeEngine` implements `SimEngine` with none of the real model: requests run in submission order,
at most `max_num_seqs` at a time, the rest wait (up to `max_waiting`, then `EngineFullError`);
a running request produces one token every `token_interval_s` of wall time while `gate` is set.
Clearing `gate` freezes every running request before its next token, which lets a test hold a
known load on a pod and compare a scrape with `snapshot()`. KV usage is the running requests'
blocks (`ceil((prompt + generated) / block_size)`) over `num_gpu_blocks`. `stop()` ends every
open stream early, as the real engine's does.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from igw.sim import tokenizer
from igw.sim.engine.api import (
    AdapterError,
    EngineFullError,
    EngineSnapshot,
    GenerationRequest,
    RequestTimings,
    SimEngine,
    TokenEvent,
)
from igw.sim.failures import FailureInjector
from igw.sim.server import PodSettings, SimPod

__all__ = ["FakeEngine", "FakeHandle", "serve_pod", "wait_until"]


class FakeHandle:
    """One request in a `FakeEngine`."""

    def __init__(self, engine: FakeEngine, request: GenerationRequest) -> None:
        self.request_id = request.request_id
        self.prompt_tokens = len(request.prompt_tokens)
        self.request = request
        self.generated = 0
        self.cancelled = False
        self._engine = engine
        self._scheduled = asyncio.Event()
        self._arrival = engine.now()
        self._scheduled_at: float | None = None
        self._first: float | None = None
        self._finished: float | None = None

    @property
    def cached_tokens(self) -> int:
        return min(self._engine.cached_tokens, self.prompt_tokens)

    @property
    def timings(self) -> RequestTimings:
        return RequestTimings(self._arrival, self._scheduled_at, self._first, self._finished)

    def schedule(self) -> None:
        self._scheduled_at = self._engine.now()
        self._scheduled.set()

    def cancel(self) -> None:
        if not self.cancelled and self._finished is None:
            self.cancelled = True
            self._engine.cancelled.append(self.request_id)
            self._engine.release(self)

    def __aiter__(self) -> AsyncIterator[TokenEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[TokenEvent]:
        engine = self._engine
        await self._scheduled.wait()
        for index in range(self.request.max_tokens):
            await asyncio.sleep(engine.token_interval_s)
            await engine.gate.wait()
            if self.cancelled or engine.stopped:
                return
            self.generated += 1
            engine.generation_tokens += 1
            now = engine.now()
            if self._first is None:
                self._first = now
            finish = "length" if index == self.request.max_tokens - 1 else None
            if finish is not None:
                self._finished = now
                engine.release(self)
            yield TokenEvent(index, now, finish)


class FakeEngine(SimEngine):
    """A scripted engine; see the module docstring."""

    def __init__(
        self,
        *,
        model: str = "fake-model",
        max_num_seqs: int = 4,
        max_waiting: int = 8,
        token_interval_s: float = 0.001,
        cached_tokens: int = 0,
        block_size: int = 16,
        num_gpu_blocks: int = 1000,
        max_loras: int = 2,
    ) -> None:
        self.model = model
        self.max_num_seqs, self.max_waiting = max_num_seqs, max_waiting
        self.token_interval_s = token_interval_s
        self.cached_tokens = cached_tokens
        self.block_size, self.num_gpu_blocks, self.max_loras = block_size, num_gpu_blocks, max_loras
        self.gate = asyncio.Event()
        self.gate.set()
        self.running: list[FakeHandle] = []
        self.waiting: list[FakeHandle] = []
        self.submitted: list[GenerationRequest] = []
        self.cancelled: list[str] = []
        self.loras: list[str] = []
        self.prompt_tokens = self.generation_tokens = 0
        self.started = self.stopped = False

    def now(self) -> float:
        return time.monotonic()

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        """Ends every open token stream before its last token, as the real engine's stop does."""
        self.stopped = True
        self.gate.set()

    def submit(self, request: GenerationRequest) -> FakeHandle:
        if request.lora is not None and request.lora not in self.loras:
            raise AdapterError(f"unknown adapter {request.lora}")
        if len(self.running) >= self.max_num_seqs and len(self.waiting) >= self.max_waiting:
            raise EngineFullError("the waiting queue is full")
        self.submitted.append(request)
        handle = FakeHandle(self, request)
        self.prompt_tokens += handle.prompt_tokens
        if len(self.running) < self.max_num_seqs:
            self.running.append(handle)
            handle.schedule()
        else:
            self.waiting.append(handle)
        return handle

    def release(self, handle: FakeHandle) -> None:
        """A request has finished or been cancelled: free its slot for the next waiting one."""
        if handle in self.waiting:
            self.waiting.remove(handle)
            return
        if handle in self.running:
            self.running.remove(handle)
        if self.waiting and len(self.running) < self.max_num_seqs:
            nxt = self.waiting.pop(0)
            self.running.append(nxt)
            nxt.schedule()

    def snapshot(self) -> EngineSnapshot:
        blocks = sum(
            math.ceil((h.prompt_tokens + h.generated) / self.block_size) for h in self.running
        )
        return EngineSnapshot(
            model_name=self.model,
            running=len(self.running),
            waiting=len(self.waiting),
            kv_cache_usage=min(1.0, blocks / self.num_gpu_blocks),
            num_gpu_blocks=self.num_gpu_blocks,
            block_size=self.block_size,
            max_loras=self.max_loras,
            running_loras=tuple(sorted({h.request.lora for h in self.running if h.request.lora})),
            waiting_loras=tuple(sorted({h.request.lora for h in self.waiting if h.request.lora})),
            loaded_loras=tuple(self.loras[: self.max_loras]),
            prefix_cache_queries=self.prompt_tokens,
            prefix_cache_hits=0,
            prompt_tokens=self.prompt_tokens,
            generation_tokens=self.generation_tokens,
            preemptions=0,
        )

    async def load_lora(self, name: str) -> None:
        if name in self.loras:
            raise AdapterError(f"adapter {name} is already known")
        self.loras.append(name)

    async def unload_lora(self, name: str) -> None:
        if name not in self.loras:
            raise AdapterError(f"unknown adapter {name}")
        self.loras.remove(name)

    def known_loras(self) -> tuple[str, ...]:
        return tuple(self.loras)


@contextlib.asynccontextmanager
async def serve_pod(
    engine: SimEngine,
    *,
    failures: FailureInjector | None = None,
    tracer_provider: TracerProvider | None = None,
    **settings: Any,
) -> AsyncIterator[SimPod]:
    """A started pod on 127.0.0.1 and a free port (`pod.url`), stopped on exit.

    `settings` are `PodSettings` fields; `model`, `max_model_len` and `pod_name` have defaults.
    """
    settings.setdefault("model", "fake-model")
    settings.setdefault("max_model_len", 1024)
    settings.setdefault("pod_name", "pod-a")
    pod = SimPod(
        engine,
        PodSettings(**settings),
        tokenizer=tokenizer,
        failures=failures,
        tracer_provider=tracer_provider,
    )
    await pod.start()
    try:
        yield pod
    finally:
        await pod.stop()


async def wait_until(condition: Callable[[], bool], timeout_s: float = 2.0) -> None:
    """Returns once `condition()` holds, checked every millisecond; TimeoutError after a while."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - polls state other tasks change, no event to await
            await asyncio.sleep(0.001)
