"""Simulator capacity: one igw-sim process serving 8 pods to 200 concurrent streaming requests.

Issue 3 asks that one process serving 8 simulated pods handle 200 concurrent streaming requests
on this machine without becoming the bottleneck. Method:

* Processes: the simulator (`python -m igw.sim.cli --pods 8`, uvloop, one event loop, the
  `llama-3.1-8b-h100` preset in real time by default) and this module, the client: a closed loop
  (`bench._load`) of `--concurrency` aiohttp workers on uvloop, spread round-robin over the
  pods, each streaming chat completions (`stream: true`, `include_usage`) one after the other.
  Every prompt starts with its own number, so no request hits the prefix cache and every one
  pays its full prefill.
* Window: `--warmup` seconds to reach the steady state, then `--duration` seconds measured. A
  token counts when its SSE event reaches the client inside the window; a request counts when
  its `[DONE]` does.
* CPU: utime + stime of the simulator process from `/proc/PID/stat` over the window, divided by
  the window's requests and tokens; also as a share of one core (the loop runs on one).
* Kept up: before the simulator starts, this process runs the same engine model (`Engine`, same
  preset and time scale) with no HTTP in front of it, for one pod's share of the streams, in the
  same closed loop (workers start staggered over half the warm-up, so that streams do not move
  in waves): the tokens per second it produces, times the pods, is what the engines' timing
  asks for. The simulator kept up if the client received at least 95 % of that. The
  median gap between two tokens of a stream is printed for both runs as well.

Run `python -m bench.sim_capacity [--quick]`; it prints the table and writes no file. A failed
start, an unexpected HTTP status or a stream without `[DONE]` exits 1; the simulator falling
behind does not (this is a measurement). `OTEL_*` variables are removed first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TextIO

import aiohttp
import orjson
import uvloop

from bench import _cpu, _load
from bench._errors import BenchmarkError
from igw.sim import tokenizer
from igw.sim.engine import Engine, EngineConfig, GenerationRequest
from igw.sim.engine.presets import PRESETS

_FILLER = "Summarize the routing configuration of the gateway and list the metrics to watch. "


@dataclass(frozen=True, slots=True)
class Settings:
    pods: int = 8
    concurrency: int = 200
    prompt_bytes: int = 1024
    max_tokens: int = 128
    warmup_s: float = 5.0
    duration_s: float = 20.0
    preset: str = "llama-3.1-8b-h100"
    time_scale: float = 1.0
    reference_s: float = 20.0


@dataclass(slots=True)
class Stats:
    """What the workers saw; only events inside the measured window count."""

    window: tuple[float, float] = (float("inf"), float("inf"))
    tokens: int = 0
    requests: int = 0
    gaps: list[float] = field(default_factory=list)

    def inside(self, at: float) -> bool:
        return self.window[0] <= at < self.window[1]

    def count(self, token_times: Sequence[float], done: float) -> None:
        """One finished stream: its tokens, and the gaps before them, inside the window."""
        last: float | None = None
        for at in token_times:
            if self.inside(at):
                self.tokens += 1
                if last is not None:
                    self.gaps.append(at - last)
            last = at
        self.requests += self.inside(done)


def _parse_args(argv: Sequence[str]) -> Settings:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sim_capacity", description=__doc__.split("\n")[0]
    )
    add = parser.add_argument
    add("--pods", type=int, default=8, help="simulated pods in the one process (8)")
    add("--concurrency", type=int, default=200, help="streams in flight (200)")
    add("--prompt-bytes", type=int, default=1024, help="bytes of each prompt (1024)")
    add("--max-tokens", type=int, default=128, help="output tokens per request (128)")
    add("--warmup", type=float, default=5.0, help="seconds before measuring (5)")
    add("--duration", type=float, default=20.0, help="seconds measured (20)")
    add("--preset", default="llama-3.1-8b-h100", choices=sorted(PRESETS))
    add("--time-scale", type=float, default=1.0, help="the simulator's --time-scale (1)")
    add("--quick", action="store_true", help="a ~10 s smoke run")
    args = parser.parse_args(argv)
    warmup, duration = (2.0, 6.0) if args.quick else (args.warmup, args.duration)
    if min(args.pods, args.concurrency, args.max_tokens, args.prompt_bytes) < 1:
        parser.error("--pods, --concurrency, --max-tokens and --prompt-bytes must be >= 1")
    return Settings(
        args.pods,
        args.concurrency,
        args.prompt_bytes,
        args.max_tokens,
        warmup,
        duration,
        args.preset,
        args.time_scale,
        reference_s=duration,
    )


def _free_port_range(count: int) -> int:
    """A first port such that it and the `count - 1` after it were free a moment ago."""
    for _ in range(100):
        with contextlib.ExitStack() as stack:
            first = stack.enter_context(socket.socket())
            first.bind(("127.0.0.1", 0))
            base: int = first.getsockname()[1]
            try:
                for offset in range(1, count):
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", base + offset))
            except OSError:
                continue
            return base
    raise BenchmarkError(f"found no {count} consecutive free ports")


@contextlib.contextmanager
def _simulator(settings: Settings, port: int, log: TextIO) -> Iterator[subprocess.Popen[bytes]]:
    argv = [
        *(sys.executable, "-m", "igw.sim.cli", "--host", "127.0.0.1", "--port", str(port)),
        *("--pods", str(settings.pods), "--preset", settings.preset),
        *("--time-scale", str(settings.time_scale), "--log-format", "console", "-v", "1"),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    process = subprocess.Popen(argv, stdout=log, stderr=log, env=env)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _wait_ready(session: aiohttp.ClientSession, urls: Sequence[str]) -> None:
    deadline = time.monotonic() + 30
    for url in urls:
        while True:
            with contextlib.suppress(aiohttp.ClientConnectionError):
                async with session.get(f"{url}/health") as response:
                    if response.status == 200:
                        break
            if time.monotonic() > deadline:
                raise BenchmarkError(f"{url} never became healthy")
            await asyncio.sleep(0.05)


def _messages(number: int, settings: Settings) -> list[dict[str, object]]:
    prefix = f"request {number}: "  # unique first bytes: no prefix-cache hits
    content = prefix + (_FILLER * (settings.prompt_bytes // len(_FILLER) + 1))
    return [{"role": "user", "content": content[: settings.prompt_bytes]}]


def _body(number: int, settings: Settings) -> bytes:
    return orjson.dumps(
        {
            "model": PRESETS[settings.preset].model_name,
            "messages": _messages(number, settings),
            "max_tokens": settings.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )


def _stagger(index: int, settings: Settings) -> float:
    """When stream `index` starts, spread over half the warm-up (the HTTP run's workers are
    spread alike by `_load.closed_loop`'s `ramp_s`).

    Streams that start together end together and send their next prompts in one step, where
    they share one prefill overhead; a few milliseconds of HTTP between them would then split
    that wave and make the simulator look slower than the engine alone. Staggered starts keep
    both runs free of such waves.
    """
    return settings.warmup_s / 2 * (index % settings.concurrency) / settings.concurrency


def _streams(
    session: aiohttp.ClientSession, urls: Sequence[str], settings: Settings, stats: Stats
) -> Callable[[int], Awaitable[bool]]:
    """Worker i's next request, until the window ends: its pod's next numbered prompt."""
    numbers = list(range(settings.concurrency))

    async def send_next(worker: int) -> bool:
        if time.perf_counter() >= stats.window[1]:
            return False
        url = urls[worker % len(urls)]
        answer = _load.Streamed(time.perf_counter())
        body = _body(numbers[worker], settings)
        await _load.stream(session, f"{url}/v1/chat/completions", body, answer)
        if answer.error or answer.done is None:
            raise BenchmarkError(f"a stream from {url} failed: {answer.error}")
        stats.count(answer.token_times, answer.done)
        numbers[worker] += settings.concurrency
        return True

    return send_next


@dataclass(frozen=True, slots=True)
class Result:
    stats: Stats
    sim_cpu_s: float
    client_cpu_s: float


async def _measure(settings: Settings, sim_pid: int, urls: Sequence[str]) -> Result:
    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
    async with _load.new_session(settings.concurrency, timeout) as session:
        await _wait_ready(session, urls)
        start = time.perf_counter() + settings.warmup_s
        stats = Stats(window=(start, start + settings.duration_s))
        load = asyncio.create_task(
            _load.closed_loop(
                settings.concurrency,
                _streams(session, urls, settings, stats),
                ramp_s=settings.warmup_s / 2,
            )
        )
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        sim_before, client_before = _cpu.cpu_seconds(sim_pid), _cpu.cpu_seconds(os.getpid())
        await asyncio.sleep(max(0.0, stats.window[1] - time.perf_counter()))
        sim_after, client_after = _cpu.cpu_seconds(sim_pid), _cpu.cpu_seconds(os.getpid())
        await load
    return Result(stats, sim_after - sim_before, client_after - client_before)


async def _reference(settings: Settings) -> Stats:
    """One engine, its share of the streams, no HTTP: the pace the timing model sets."""
    config = EngineConfig.from_preset(settings.preset, time_scale=settings.time_scale)
    engine = Engine(config)
    streams = max(1, round(settings.concurrency / settings.pods))
    start = time.perf_counter() + settings.warmup_s
    stats = Stats(window=(start, start + settings.reference_s))

    async def stream(index: int) -> None:
        number = index
        await asyncio.sleep(_stagger(index * settings.pods, settings))
        while time.perf_counter() < stats.window[1]:
            prompt = tokenizer.encode_chat(_messages(number, settings))
            handle = engine.submit(GenerationRequest(f"ref-{number}", prompt, settings.max_tokens))
            token_times = [time.perf_counter() async for _ in handle]
            stats.count(token_times, time.perf_counter())
            number += streams

    await engine.start()
    try:
        await asyncio.gather(*(stream(i) for i in range(streams)))
    finally:
        await engine.stop()
    return stats


def _median_ms(gaps: Sequence[float]) -> str:
    return f"{statistics.median(gaps) * 1e3:.1f} ms" if gaps else "n/a"


def _report(settings: Settings, reference: Stats, result: Result) -> str:
    stats, window = result.stats, settings.duration_s
    asked = reference.tokens / settings.reference_s * settings.pods
    achieved = stats.tokens / window
    kept_up = achieved >= 0.95 * asked
    per_request = result.sim_cpu_s / max(stats.requests, 1) * 1e3
    rows = [
        ("pods / streams", f"{settings.pods} / {settings.concurrency}"),
        ("preset, time scale", f"{settings.preset}, {settings.time_scale:g}x"),
        ("prompt / output tokens", f"~{settings.prompt_bytes // 4} / {settings.max_tokens}"),
        ("requests completed", f"{stats.requests} ({stats.requests / window:.1f}/s)"),
        ("tokens streamed", f"{stats.tokens} ({achieved:.0f}/s)"),
        ("tokens/s the engines' timing asks", f"{asked:.0f} (engine alone, no HTTP, x pods)"),
        ("kept up (>= 95 % of it)", f"{'yes' if kept_up else 'NO'} ({achieved / asked:.1%})"),
        (
            "median gap between tokens",
            f"{_median_ms(stats.gaps)} (engine alone: {_median_ms(reference.gaps)})",
        ),
        ("simulator CPU", f"{result.sim_cpu_s / window:.0%} of one core"),
        ("simulator CPU per request", f"{per_request:.2f} ms"),
        ("simulator CPU per token", f"{result.sim_cpu_s / max(stats.tokens, 1) * 1e6:.1f} us"),
        ("client CPU", f"{result.client_cpu_s / window:.0%} of one core"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv: Sequence[str] | None = None) -> int:
    settings = _parse_args(sys.argv[1:] if argv is None else argv)
    port = _free_port_range(settings.pods)
    urls = [f"http://127.0.0.1:{port + i}" for i in range(settings.pods)]
    reference = uvloop.run(_reference(settings))
    with tempfile.TemporaryFile("w+") as log, _simulator(settings, port, log) as process:
        try:
            result = uvloop.run(_measure(settings, process.pid, urls))
        except (BenchmarkError, aiohttp.ClientError, OSError) as e:
            log.seek(0)
            print(f"benchmark failed: {e}\n{log.read()[-3000:]}", file=sys.stderr)
            return 1
    print(_report(settings, reference, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
