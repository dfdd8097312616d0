"""A fuzz run: `count` cases against one running service, in batches, with the checks between.

Cases run `concurrency` at a time on one gRPC channel (as Envoy multiplexes its streams). After
each batch the process must be alive and its health SERVING, else the run stops there: a crash
is the finding. RSS is read before the first case, after the warm-up (the first tenth of the run,
at most 5,000 cases: caches, the prefix index and allocator pools fill up there) and at the end;
the growth after warm-up is given per 10,000 streams. At the end the service's open-request
figures must fall back to 0 within `SETTLE_S` (a leaked stream holds one forever), and the
service must have logged no unexpected exception (`ext_proc stream failed`): such a stream ends
with gRPC INTERNAL, which Envoy turns into a 500 where a 4xx with a reason was due, and it is a
bug in our code even when the process survives it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import grpc

from bench._fuzz.cases import make_case
from bench._fuzz.oracle import Method, Outcome, play
from bench._fuzz.service import Service
from igw.common.testing.messages import ext_proc_call

__all__ = ["Failure", "RunResult", "run"]

SETTLE_S = 10.0
_CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
)


@dataclass(frozen=True, slots=True)
class Failure:
    index: int
    case_kind: str
    outcome: str
    detail: str


@dataclass(slots=True)
class RunResult:
    service: str
    seed: int
    count: int
    ran: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    case_kinds: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    grpc_details: dict[str, tuple[int, str]] = field(default_factory=dict)
    """An example (case index, message) per gRPC status seen."""
    problems: list[str] = field(default_factory=list)
    """Process-level failures: died, not SERVING, open requests left."""
    rss_kib: dict[str, int] = field(default_factory=dict)
    rss_trace: list[tuple[int, int]] = field(default_factory=list)
    """(streams run, RSS KiB) after each batch."""
    fds: dict[str, int] = field(default_factory=dict)
    open_requests: dict[str, float] = field(default_factory=dict)
    servicer_exceptions: Counter[str] = field(default_factory=Counter)
    """Unexpected exceptions the servicer logged (`ext_proc stream failed`), by last frame."""
    elapsed_s: float = 0.0
    warmup: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures and not self.problems and self.ran == self.count

    @property
    def growth_per_10k_kib(self) -> float | None:
        measured = self.ran - self.warmup
        if "warm" not in self.rss_kib or "end" not in self.rss_kib or measured <= 0:
            return None
        return (self.rss_kib["end"] - self.rss_kib["warm"]) * 10_000 / measured

    @property
    def late_growth_per_10k_kib(self) -> float | None:
        """Growth over the run's second half: caches that fill up once are full by then."""
        half = [(ran, kib) for ran, kib in self.rss_trace if ran >= self.ran // 2]
        if len(half) < 2 or half[-1][0] == half[0][0]:
            return None
        (ran0, kib0), (ran1, kib1) = half[0], half[-1]
        return (kib1 - kib0) * 10_000 / (ran1 - ran0)


def warmup_count(count: int) -> int:
    return min(count // 10, 5_000)


async def run(
    service: Service,
    *,
    seed: int,
    count: int,
    concurrency: int = 8,
    deadline_s: float = 10.0,
    batch: int = 500,
    progress: Callable[[RunResult], None] | None = None,
) -> RunResult:
    """Runs cases 0..count-1 of `seed` (see the module docstring)."""
    result = RunResult(service.name, seed, count, warmup=warmup_count(count))
    result.rss_kib["start"], result.fds["start"] = service.rss_kib(), service.open_fds()
    started = time.monotonic()
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{service.grpc_port}", options=_CHANNEL_OPTIONS
    ) as channel:
        method = ext_proc_call(channel)
        for first in range(0, count, batch):
            indices = iter(range(first, min(first + batch, count)))
            workers = [
                _worker(method, seed, indices, deadline_s, result) for _ in range(concurrency)
            ]
            await asyncio.gather(*workers)
            if not await _still_healthy(service, result):
                break
            result.rss_trace.append((result.ran, service.rss_kib()))
            if first < result.warmup <= first + batch or (result.warmup == 0 and first == 0):
                result.rss_kib["warm"] = result.rss_trace[-1][1]
            if progress is not None:
                progress(result)
    result.elapsed_s = time.monotonic() - started
    if service.alive():
        result.rss_kib["end"], result.fds["end"] = service.rss_kib(), service.open_fds()
        await _settle(service, result)
    result.servicer_exceptions = service.logged_exceptions()
    if result.servicer_exceptions:
        result.problems.append(
            f"{result.servicer_exceptions.total()} streams ended by an unexpected exception"
        )
    return result


async def _worker(
    method: Method, seed: int, indices: Iterator[int], deadline_s: float, result: RunResult
) -> None:
    for index in indices:
        case = make_case(seed, index)
        outcome = await play(method, case, deadline_s)
        _record(result, index, case.kind, outcome)


def _record(result: RunResult, index: int, case_kind: str, outcome: Outcome) -> None:
    result.ran += 1
    result.outcomes[outcome.kind] += 1
    result.case_kinds[case_kind] += 1
    if outcome.kind.startswith("grpc-") and outcome.kind not in result.grpc_details:
        result.grpc_details[outcome.kind] = (index, outcome.detail[:300])
    if outcome.failed:
        # The kinds of the replies it got: enough to tell a reordering from a stream cut short.
        got = ", ".join(view.kind for view in outcome.replies) or "none"
        detail = f"{outcome.detail[:300]} (replies: {got[:200]})"
        result.failures.append(Failure(index, case_kind, outcome.kind, detail))


async def _still_healthy(service: Service, result: RunResult) -> bool:
    if not service.alive():
        result.problems.append(f"the process died after {result.ran} streams\n{service.log_tail()}")
        return False
    try:
        serving = await service.serving()
    except grpc.aio.AioRpcError as e:
        serving = False
        result.problems.append(f"health check failed: {e.code().name} {e.details()}")
    if not serving:
        result.problems.append(f"health not SERVING after {result.ran} streams")
    return serving


async def _settle(service: Service, result: RunResult) -> None:
    """Waits for every open-request figure to reach 0; records what is left after SETTLE_S."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        result.open_requests = await service.open_requests()
        if not any(result.open_requests.values()) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    if left := {name: value for name, value in result.open_requests.items() if value}:
        result.problems.append(f"open requests left after the run: {left}")
