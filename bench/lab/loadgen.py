"""Open-loop load: Poisson arrivals, streamed chat completions, timings taken at the client.

Requests leave at their scheduled times whether or not earlier ones have answered (open loop: a
router that falls behind builds a queue, as users would see it). Each is one POST with
`stream: true`; the client records the time of the response's first content token (TTFT), the
gaps between later tokens (inter-token latency, ITL), the time of `[DONE]` (end to end), the
pod that answered (`x-inference-pod`) and the status. A request fails on a non-200 status, a
transport error, a stream without `[DONE]`, or not finishing within the rung's drain limit
(it is then cancelled, which frees its engine slot).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiohttp

from bench.lab.workloads import LabRequest

_HEADERS = {"content-type": "application/json"}


@dataclass(slots=True)
class Outcome:
    index: int
    rung: int
    group: str
    sent: float
    """Seconds since the run started."""
    status: int = 0
    pod: str = ""
    ttft: float | None = None
    itl: list[float] = field(default_factory=list)
    e2e: float | None = None
    tokens: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error and self.e2e is not None


async def send(session: aiohttp.ClientSession, url: str, request: LabRequest, out: Outcome) -> None:
    start = time.perf_counter()
    last = start
    try:
        async with session.post(url, data=request.body, headers=_HEADERS) as response:
            out.status = response.status
            out.pod = response.headers.get("x-inference-pod", "")
            if response.status != 200:
                out.error = f"HTTP {response.status}"
                await response.read()
                return
            async for line in response.content:
                if not line.startswith(b"data: "):
                    continue
                now = time.perf_counter()
                if line.startswith(b"data: [DONE]"):
                    out.e2e = now - start
                    break
                if b'"content":"' not in line or b'"content":""' in line:
                    continue  # the role chunk, the usage chunk
                if out.ttft is None:
                    out.ttft = now - start
                else:
                    out.itl.append(now - last)
                last = now
                out.tokens += 1
            if out.e2e is None:
                out.error = "stream ended without [DONE]"
    except asyncio.CancelledError:
        out.error = "not finished within the drain limit"
        raise
    except (aiohttp.ClientError, TimeoutError) as e:
        out.error = f"{type(e).__name__}: {e}"


async def run_rung(
    session: aiohttp.ClientSession,
    url: str,
    requests: Sequence[tuple[int, LabRequest]],
    arrivals: Sequence[float],
    *,
    rung: int,
    run_start: float,
    drain_s: float,
    on_progress: Callable[[list[Outcome]], None],
) -> list[Outcome]:
    """Sends `requests` at `arrivals` (seconds after now), then waits up to `drain_s` for them."""
    outcomes: list[Outcome] = []
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    last_progress = start
    for (index, request), at in zip(requests, arrivals, strict=True):
        delay = start + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        out = Outcome(index, rung, request.group, time.perf_counter() - run_start)
        outcomes.append(out)
        tasks.append(asyncio.create_task(send(session, url, request, out)))
        if time.perf_counter() - last_progress >= 5.0:
            last_progress = time.perf_counter()
            on_progress(outcomes)
    deadline = time.perf_counter() + drain_s
    while any(not t.done() for t in tasks) and time.perf_counter() < deadline:
        await asyncio.wait([t for t in tasks if not t.done()], timeout=5.0)
        on_progress(outcomes)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return outcomes


def poisson_arrivals(
    rng_expovariate: Callable[[float], float], rate: float, count: int
) -> list[float]:
    """`count` arrival offsets of a Poisson process of `rate` per second."""
    t, out = 0.0, []
    for _ in range(count):
        t += rng_expovariate(rate)
        out.append(t)
    return out
