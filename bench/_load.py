"""The one load generator: chat-completions POSTs, paced closed or open loop, timed at the client.

Pacing:

* closed loop (`closed_loop`): `concurrency` workers, each sending its next request when its last
  one has been answered, until the caller's `send_next` says stop (after a number of requests,
  or at a deadline). `ramp_s` spreads the workers' starts.
* open loop (`open_loop`): requests leave at their scheduled times whether or not earlier ones
  have answered, so a server that falls behind builds a queue, as users would see it; then up to
  `drain_s` for the answers, after which the rest are cancelled (which frees their engine slots).
  `poisson_arrivals` draws the schedule.

Answers:

* whole (`run_load`: a closed loop of `requests` POSTs of one body): the hot path only times the
  request, reads the answer, counts its status and, if asked, checks the answer; everything else
  happens between rounds. With `rate`, the loop is also paced: the k-th request does not leave
  before k / `rate` seconds, so two servers can be compared at the same request rate (a closed
  loop at full speed runs each at its own saturation, where a slower server also batches less).
* streamed (`stream`): one POST with `stream: true`, its server-sent events read as they arrive
  into a `Streamed`: the status, the pod that answered (`x-inference-pod`), the time of every
  content token and of `[DONE]`. It fails on a non-200 status, a transport error, a stream
  without `[DONE]`, or being cancelled first.

Every session comes from `new_session`: one keep-alive connection per request in flight, no
cookies, answers read as sent. All times are `time.perf_counter()` readings.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp

__all__ = [
    "LoadResult",
    "Streamed",
    "chat_body",
    "closed_loop",
    "new_session",
    "open_loop",
    "poisson_arrivals",
    "run_load",
    "stream",
]

_HEADERS = {"content-type": "application/json"}
_TIMEOUT = aiohttp.ClientTimeout(total=30)
_PROGRESS_S = 5.0
_CANCELLED = "not finished within the drain limit"
"""A streamed answer's error when it was cancelled: the open loop's drain limit passed."""

_SYSTEM_PROMPT = (
    "You are a careful assistant for an engineering team. Answer precisely, cite the relevant "
    "configuration keys, and say so plainly when something is unknown. "
)
_QUESTION = (
    "Our gateway routes chat completions to a pool of model servers. Explain how the body-based "
    "router picks the model header, what happens to LoRA adapters, and which metrics to watch "
    "when latency rises under load. "
)


def chat_body(size: int = 2048) -> bytes:
    """A realistic OpenAI chat-completions request of about `size` bytes, with a `model`."""
    messages = [
        {"role": "system", "content": _SYSTEM_PROMPT},
        {"role": "user", "content": ""},
    ]
    request = {
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "messages": messages,
        "max_tokens": 256,
        "temperature": 0.7,
        "stream": False,
    }
    padding = max(size - len(json.dumps(request)), 0)
    messages[1]["content"] = (_QUESTION * (padding // len(_QUESTION) + 1))[:padding]
    return json.dumps(request).encode()


def new_session(
    limit: int,
    timeout: aiohttp.ClientTimeout = _TIMEOUT,
    headers: Mapping[str, str] | None = None,
) -> aiohttp.ClientSession:
    """A session of at most `limit` connections (0: no limit), sending `headers` with every
    request (one class of clients: an objective, a tenant); create it in the running loop."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit),
        timeout=timeout,
        headers=headers,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
    )


async def closed_loop(
    concurrency: int, send_next: Callable[[int], Awaitable[bool]], *, ramp_s: float = 0.0
) -> float:
    """Runs `concurrency` workers; worker i awaits `send_next(i)` (one request, answered) until
    it returns False, starting `ramp_s * i / concurrency` seconds late. Returns the seconds
    from the start to the last worker's end."""

    async def worker(index: int) -> None:
        if ramp_s > 0:
            await asyncio.sleep(ramp_s * index / concurrency)
        while await send_next(index):
            pass

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return time.perf_counter() - start


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests: int
    seconds: float
    latencies_s: tuple[float, ...]
    statuses: dict[int, int]
    """HTTP status -> count."""
    rejected: int = 0
    """Answers the caller's `accept` check turned down."""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


async def run_load(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    *,
    requests: int,
    concurrency: int,
    accept: Callable[[bytes], bool] | None = None,
    rate: float | None = None,
) -> LoadResult:
    """Send `requests` POSTs to `url`, `concurrency` at a time; raises on a transport error.

    With `accept`, every answer's body is checked and those it returns False for are counted.
    With `rate` (requests per second), no request leaves before its turn at that rate.
    """
    latencies: list[float] = []
    statuses: collections.Counter[int] = collections.Counter()
    remaining, rejected = requests, 0
    began = time.perf_counter()

    async def send_next(_worker: int) -> bool:
        nonlocal remaining, rejected
        if remaining <= 0:
            return False
        remaining -= 1
        if rate is not None:
            wait = began + (requests - remaining - 1) / rate - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
        start = time.perf_counter()
        async with session.post(url, data=body, headers=_HEADERS) as response:
            answer = await response.read()
        latencies.append(time.perf_counter() - start)
        statuses[response.status] += 1
        if accept is not None and not accept(answer):
            rejected += 1
        return True

    seconds = await closed_loop(concurrency, send_next)
    return LoadResult(requests, seconds, tuple(latencies), dict(statuses), rejected)


@dataclass(slots=True)
class Streamed:
    """One streamed chat completion as the client saw it, filled in as its answer arrives."""

    released: float
    """When the load generator let the request go (open loop: its arrival time, reached)."""
    started: float = 0.0
    """When its POST began; the time to first token and end to end count from here."""
    status: int = 0
    pod: str = ""
    token_times: list[float] = field(default_factory=list)
    """When each content token's event arrived."""
    done: float | None = None
    """When `[DONE]` arrived."""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error and self.done is not None

    @property
    def ttft(self) -> float | None:
        return self.token_times[0] - self.started if self.token_times else None

    @property
    def itl(self) -> list[float]:
        """The gaps between consecutive tokens (inter-token latency)."""
        return [later - earlier for earlier, later in itertools.pairwise(self.token_times)]

    @property
    def e2e(self) -> float | None:
        return None if self.done is None else self.done - self.started

    @property
    def tokens(self) -> int:
        return len(self.token_times)


def _is_token(event: bytes) -> bool:
    """A content token's event; not the role chunk (empty content) nor the usage chunk."""
    return b'"content":"' in event and b'"content":""' not in event


async def stream(session: aiohttp.ClientSession, url: str, body: bytes, answer: Streamed) -> None:
    """POSTs `body` and reads the server-sent events of its answer into `answer`.

    Failures are recorded in `answer.error`, not raised; a cancellation is recorded and raised.
    """
    answer.started = time.perf_counter()
    try:
        async with session.post(url, data=body, headers=_HEADERS) as response:
            answer.status = response.status
            answer.pod = response.headers.get("x-inference-pod", "")
            if response.status != 200:
                answer.error = f"HTTP {response.status}"
                await response.read()
                return
            async for line in response.content:
                if not line.startswith(b"data: "):
                    continue
                now = time.perf_counter()
                if line.startswith(b"data: [DONE]"):
                    answer.done = now
                    break
                if _is_token(line):
                    answer.token_times.append(now)
            if answer.done is None:
                answer.error = "stream ended without [DONE]"
    except asyncio.CancelledError:
        answer.error = _CANCELLED
        raise
    except (aiohttp.ClientError, TimeoutError) as e:
        answer.error = f"{type(e).__name__}: {e}"


async def open_loop(
    session: aiohttp.ClientSession,
    url: str,
    bodies: Sequence[bytes],
    arrivals: Sequence[float],
    *,
    drain_s: float,
    on_progress: Callable[[Sequence[Streamed]], None],
) -> list[Streamed]:
    """Streams `bodies` at `arrivals` (seconds after now), then waits up to `drain_s` for them.

    `on_progress` gets the answers so far every 5 s while sending and while draining.
    """
    answers: list[Streamed] = []
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    last_progress = start
    for body, at in zip(bodies, arrivals, strict=True):
        delay = start + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        answer = Streamed(time.perf_counter())
        answers.append(answer)
        tasks.append(asyncio.create_task(stream(session, url, body, answer)))
        if time.perf_counter() - last_progress >= _PROGRESS_S:
            last_progress = time.perf_counter()
            on_progress(answers)
    deadline = time.perf_counter() + drain_s
    while any(not t.done() for t in tasks) and time.perf_counter() < deadline:
        await asyncio.wait([t for t in tasks if not t.done()], timeout=_PROGRESS_S)
        on_progress(answers)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return answers


def poisson_arrivals(
    rng_expovariate: Callable[[float], float], rate: float, count: int
) -> list[float]:
    """`count` arrival offsets of a Poisson process of `rate` per second."""
    t, out = 0.0, []
    for _ in range(count):
        t += rng_expovariate(rate)
        out.append(t)
    return out
