"""EPP CPU per request for streamed 500-token answers vs non-streamed ones, lean vs compatible.

DESIGN.md §6 sets the target: in the lean response mode (§6.1) a streamed response (one SSE event
per token, 500 tokens) costs the EPP at most 2x the CPU of a non-streamed one. Method:

* Processes (`bench._streaming_gateway`): one `igw-sim` pod (its default engine profile at
  `--time-scale`, so each token is its own SSE event, paced), two EPPs started alike
  (`--response-sample-rate` 0, the default) and one Envoy (2 workers) with a listener per EPP:
  "lean" (response body STREAMED) and "compatible" (upstream's FULL_DUPLEX_STREAMED).
* Load: a closed loop of `--concurrency` aiohttp workers on uvloop, in this process
  (`bench._load`), POSTing a 2 KB chat-completions body asking for `--tokens` tokens, streamed
  (with `stream_options.include_usage`) or whole. After one warm-up round per case, `--rounds`
  rounds of each case in turn (lean streamed, lean whole, compatible streamed, compatible
  whole, then again), so drift in the machine hits all cases alike.
* CPU: utime + stime of each process from `/proc/PID/stat` before and after every round,
  divided by the round's requests (`bench._cpu`); the figure is the median over a case's rounds.
  Each EPP also scrapes the pod's metrics every 50 ms, serving or not; "net of scraping"
  subtracts the idle EPP's CPU over the same round, leaving what the requests cost. The target
  is judged on both.
* Checks, every round: every answer is a 200 and complete (streamed: every token's event, the
  usage event and `[DONE]`; whole: `completion_tokens` equal to `--tokens`), and the EPPs read
  response bodies as their mode says: the compatible EPP every one, the lean EPP none (its
  response-size histogram, recorded at a response's end, does not move). A failed check exits
  1; a missed target does not (this is a measurement).

Run `python -m bench.epp_streaming [--quick]`; it prints the table (Markdown) and writes no file.
`OTEL_*` variables are removed first, so nothing is traced. Every process is stopped at the end,
on failure, on Ctrl-C and on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import NoReturn

import aiohttp
import uvloop

from bench import _cpu, _load, _streaming_gateway
from bench._errors import BenchmarkError

TARGET_RATIO = 2.0
"""DESIGN.md §6: lean streamed EPP CPU per request <= 2x a non-streamed request's."""

KINDS = ("streamed", "whole")
_SETTLE_S = 0.2
"""Pause after a round's last answer, so the streams' teardown is billed to that round."""
_ANSWER_TIMEOUT = aiohttp.ClientTimeout(total=300)


@dataclass(frozen=True, slots=True)
class Settings:
    requests_per_round: int
    rounds: int
    concurrency: int
    tokens: int
    time_scale: float


def _parse_args(argv: Sequence[str]) -> Settings:
    parser = argparse.ArgumentParser(
        prog="python -m bench.epp_streaming", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--requests", type=int, default=48, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per case")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--tokens", type=int, default=500, help="tokens per answer")
    parser.add_argument("--time-scale", type=float, default=5.0, help="the pod's time scale")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 round of 16")
    args = parser.parse_args(argv)
    requests, rounds = (16, 1) if args.quick else (args.requests, args.rounds)
    if min(requests, rounds, args.concurrency, args.tokens) < 1 or args.time_scale <= 0:
        parser.error("--requests, --rounds, --concurrency, --tokens, --time-scale must be > 0")
    return Settings(requests, rounds, args.concurrency, args.tokens, args.time_scale)


def request_body(kind: str, tokens: int) -> bytes:
    request = json.loads(_load.chat_body(2048))
    request |= {"model": _streaming_gateway.MODEL, "max_tokens": tokens, "stream": False}
    if kind == "streamed":
        request |= {"stream": True, "stream_options": {"include_usage": True}}
    return json.dumps(request).encode()


def complete(kind: str, body: bytes, tokens: int) -> bool:
    """Whether an answer holds all it should (streamed: role, tokens, usage, [DONE] events)."""
    if kind == "streamed":
        return body.count(b"data: ") == tokens + 3 and body.endswith(b"data: [DONE]\n\n")
    try:
        return bool(json.loads(body)["usage"]["completion_tokens"] == tokens)
    except (ValueError, KeyError, TypeError):
        return False


async def run_load(
    session: aiohttp.ClientSession, url: str, kind: str, settings: Settings, requests: int
) -> _load.LoadResult:
    """`requests` POSTs, `concurrency` at a time; incomplete answers count as `rejected`."""
    return await _load.run_load(
        session,
        url,
        request_body(kind, settings.tokens),
        requests=requests,
        concurrency=settings.concurrency,
        accept=lambda answer: complete(kind, answer, settings.tokens),
    )


async def _round(
    gateway: _streaming_gateway.StreamingGateway,
    session: aiohttp.ClientSession,
    case: tuple[str, str],
    settings: Settings,
    requests: int,
) -> _cpu.Round:
    mode, kind = case
    pids = {**gateway.pids(), "client": os.getpid()}
    read_before = {m: gateway.bodies_read(m) for m in _streaming_gateway.MODES}
    before = _cpu.CpuSnapshot.take(pids)
    load = await run_load(session, gateway.url(mode), kind, settings, requests)
    await asyncio.sleep(_SETTLE_S)
    after = _cpu.CpuSnapshot.take(pids)
    if bad := {status: n for status, n in load.statuses.items() if status != 200}:
        raise BenchmarkError(f"{mode}/{kind}: unexpected HTTP statuses (status: count) {bad}")
    if load.rejected:
        raise BenchmarkError(f"{mode}/{kind}: {load.rejected} of {requests} answers incomplete")
    read = {m: gateway.bodies_read(m) - read_before[m] for m in _streaming_gateway.MODES}
    expected = {m: requests if m == mode == "compatible" else 0 for m in read}
    if read != expected:
        raise BenchmarkError(f"{mode}/{kind}: response bodies read {read}, expected {expected}")
    return _cpu.Round(f"{mode}/{kind}", load, before, after)


def cases() -> list[tuple[str, str]]:
    return [(mode, kind) for mode in _streaming_gateway.MODES for kind in KINDS]


async def _measure(
    gateway: _streaming_gateway.StreamingGateway, settings: Settings
) -> list[_cpu.Round]:
    async with _load.new_session(settings.concurrency, _ANSWER_TIMEOUT) as session:
        for case in cases():
            await _round(gateway, session, case, settings, settings.concurrency)
        rounds: list[_cpu.Round] = []
        for _ in range(settings.rounds):
            for case in cases():
                r = await _round(gateway, session, case, settings, settings.requests_per_round)
                rounds.append(r)
                print(
                    f"round {len(rounds)}/{settings.rounds * len(cases())} {r.component}: "
                    f"{r.cpu_ms_per_request(case[0]):.2f} EPP CPU-ms/request",
                    file=sys.stderr,
                )
        return rounds


def _idle(mode: str) -> str:
    return next(m for m in _streaming_gateway.MODES if m != mode)


def net_ms(r: _cpu.Round, mode: str) -> float:
    """The EPP's CPU per request less the idle EPP's over the same round.

    Both EPPs scrape the same pod every 50 ms whether or not they serve; the idle one's CPU is
    that background, so the difference is what the requests themselves cost.
    """
    return r.cpu_ms_per_request(mode) - r.cpu_ms_per_request(_idle(mode))


def _epp_ms(rounds: Sequence[_cpu.Round], mode: str, kind: str, *, net: bool) -> float:
    mine = [r for r in rounds if r.component == f"{mode}/{kind}"]
    return statistics.median(net_ms(r, mode) if net else r.cpu_ms_per_request(mode) for r in mine)


def report(rounds: Sequence[_cpu.Round]) -> str:
    """The per-case table and the ratios, as Markdown."""
    columns = ["mode", "answer", "EPP CPU-ms/req", "EPP net of scraping", "Envoy", "sim", "req/s"]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for mode, kind in cases():
        mine = [r for r in rounds if r.component == f"{mode}/{kind}"]
        cells = [_epp_ms(rounds, mode, kind, net=False), _epp_ms(rounds, mode, kind, net=True)]
        cells += [
            statistics.median(r.cpu_ms_per_request(p) for r in mine) for p in ("envoy", "sim")
        ]
        rps = statistics.median(r.load.rps for r in mine)
        lines.append(
            f"| {mode} | {kind} | " + " | ".join(f"{c:.2f}" for c in cells) + f" | {rps:.1f} |"
        )
    lines.extend(_ratios(rounds, net=net) for net in (False, True))
    return "\n".join(lines)


def _ratios(rounds: Sequence[_cpu.Round], *, net: bool) -> str:
    def ratio(mode: str) -> float:
        streamed = _epp_ms(rounds, mode, "streamed", net=net)
        return streamed / _epp_ms(rounds, mode, "whole", net=net)

    lean = ratio("lean")
    verdict = "met" if lean <= TARGET_RATIO else "NOT met"
    compatible_streamed = _epp_ms(rounds, "compatible", "streamed", net=net)
    saving = compatible_streamed / _epp_ms(rounds, "lean", "streamed", net=net)
    what = "net of scraping" if net else "whole process"
    return (
        f"\nStreamed / non-streamed EPP CPU per request ({what}): lean {lean:.2f}x "
        f"(target <= {TARGET_RATIO:.1f}x: {verdict}), compatible {ratio('compatible'):.2f}x; "
        f"a streamed request costs the compatible EPP {saving:.1f}x what it costs the lean one."
    )


def _run(settings: Settings) -> list[_cpu.Round] | None:
    """The measured rounds, or None after reporting why the benchmark failed."""
    with tempfile.TemporaryDirectory(prefix="igw-bench-") as workdir:
        gateway = _streaming_gateway.StreamingGateway(Path(workdir), time_scale=settings.time_scale)
        try:
            with gateway:
                return uvloop.run(_measure(gateway, settings))
        except (RuntimeError, OSError, aiohttp.ClientError, TimeoutError) as e:
            print(f"benchmark failed: {e!r}\n{gateway.log_tails()}", file=sys.stderr)
            return None


def _interrupt(_signum: int, _frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    settings = _parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _interrupt)
    for name in [name for name in os.environ if name.startswith("OTEL_")]:
        del os.environ[name]
    try:
        rounds = _run(settings)
    except KeyboardInterrupt:
        print("interrupted; every process was stopped", file=sys.stderr)
        return 130
    if rounds is None:
        return 1
    print(report(rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
