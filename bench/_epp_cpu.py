"""EPP CPU per request against the trivial echo ext_proc, side by side through one Envoy.

DESIGN.md §6: the EPP's CPU per request (2 KB chat body, default scheduler, 8 endpoints) at most
1.3x that of a trivial echo ext_proc measured in the same run. Method (feasibility §2):

* Processes and listeners: `_epp_stack` (one gateway Envoy, fixed-answer upstream Envoy on 8
  ports that the EPP scrapes every 50 ms and picks among). Three listeners are measured: `echo`
  (request side FULL_DUPLEX_STREAMED), `epp_req` (the EPP with exactly the echo's filter
  settings: the like-for-like figure and the headline) and `epp` (upstream's compatible config,
  response headers and body through the EPP too: what a drop-in deployment pays). In
  `epp_req` the EPP never sees a response, so its in-flight bookkeeping is not closed: a cost it
  skips, which the compatible figure includes.
* Load: `_load.run_load`, a closed loop of `concurrency` aiohttp workers POSTing the same
  2,048-byte chat body. One warm-up round per listener, then rounds alternating echo, epp_req,
  epp, echo, ...
* CPU: utime + stime from `/proc/PID/stat` per process over each round, divided by its requests.
  The EPP also scrapes 8 pages 20 times a second whatever the load; that background is measured
  during the echo rounds (where the EPP serves nothing) as CPU-seconds per second and subtracted
  from each EPP round (`bg-corrected`), the raw figure is shown beside it. `other procs` is the
  median over the listener's rounds of the cores that anything else on the machine used
  (`/proc/stat` minus the measured processes): well above 0 means disturbed rounds. The
  headline is the median corrected `epp_req` figure over the echo's median.
* Checks, every round: every answer is a 200, each listener's ext_proc streams rose by exactly
  its requests (and no other filter's), and the EPP's `inference_objective_request_total` rose by
  the requests of EPP rounds only.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass

from bench import _cpu, _load
from bench._epp_common import Section, table, verdict
from bench._epp_stack import Stack
from bench._errors import BenchmarkError

TARGET_RATIO = 1.3
MEASURED = ("echo", "epp_req", "epp")
_FILTERS = {"echo": "echo", "epp_req": "epp_req", "epp": "epp"}


@dataclass(frozen=True, slots=True)
class CpuSettings:
    requests: int
    rounds: int
    concurrency: int = 16
    body_bytes: int = 2048


def _check(
    stack: Stack, listener: str, load: _load.LoadResult, streams: dict[str, int], served: int
) -> None:
    if bad := {s: n for s, n in load.statuses.items() if s != 200}:
        raise BenchmarkError(f"{listener}: unexpected HTTP statuses (status: count) {bad}")
    now = stack.ext_proc_streams()
    opened = {name: now[name] - streams[name] for name in now}
    expected = {name: load.requests if name == _FILTERS[listener] else 0 for name in now}
    if opened != expected:
        raise BenchmarkError(f"{listener}: ext_proc streams opened {opened}, expected {expected}")
    rose = stack.epp_requests() - served
    if rose != (0 if listener == "echo" else load.requests):
        raise BenchmarkError(f"{listener}: inference_objective_request_total rose by {rose}")


async def _round(stack: Stack, listener: str, requests: int, s: CpuSettings) -> _cpu.Round:
    streams, served = stack.ext_proc_streams(), stack.epp_requests()
    async with _load.new_session(s.concurrency) as session:
        r = await _cpu.chat_round(
            listener, session, stack.url(listener), stack.pids(),
            requests=requests, concurrency=s.concurrency, body_bytes=s.body_bytes,
        )  # fmt: skip
    _check(stack, listener, r.load, streams, served)
    return r


async def measure(stack: Stack, s: CpuSettings) -> list[_cpu.Round]:
    for listener in MEASURED:
        await _round(stack, listener, max(300, s.requests // 5), s)
    rounds: list[_cpu.Round] = []
    for _ in range(s.rounds):
        for listener in MEASURED:
            r = await _round(stack, listener, s.requests, s)
            rounds.append(r)
            own = "epp" if listener != "echo" else "echo"
            print(
                f"cpu round {len(rounds)}/{s.rounds * len(MEASURED)} {listener}: "
                f"{r.load.rps:.0f} RPS, {r.cpu_ms_per_request(own):.3f} CPU-ms/request",
                file=sys.stderr,
            )
    return rounds


def _seconds(r: _cpu.Round) -> float:
    return r.after.at - r.before.at


def _epp_background(rounds: list[_cpu.Round]) -> float:
    """The EPP's CPU-seconds per second while it serves nothing (scraping), from echo rounds."""
    echo = [r for r in rounds if r.component == "echo"]
    return statistics.median(
        (r.after.processes["epp"] - r.before.processes["epp"]) / _seconds(r) for r in echo
    )


def _corrected(r: _cpu.Round, background: float) -> float:
    return r.cpu_ms_per_request("epp") - background * _seconds(r) * 1000 / r.load.requests


def _median_range(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


_COLUMNS = ["listener", "ext_proc CPU-ms/req raw", "bg-corrected", "gateway Envoy", "upstream"]
_LABELS = {
    "epp_req": "EPP, request side only (like-for-like)",
    "epp": "EPP, compatible config (response side too)",
}


def _rows(rounds: list[_cpu.Round], background: float) -> tuple[list[list[str]], dict[str, float]]:
    """The per-listener table rows, and each listener's median (corrected) CPU-ms per request."""
    medians: dict[str, float] = {}
    rows = []
    for listener in MEASURED:
        mine = [r for r in rounds if r.component == listener]
        own = "echo" if listener == "echo" else "epp"
        raw = [r.cpu_ms_per_request(own) for r in mine]
        per = raw if listener == "echo" else [_corrected(r, background) for r in mine]
        medians[listener] = statistics.median(per)
        rows.append([
            listener, _median_range(raw), _median_range(per),
            _median_range([r.cpu_ms_per_request("envoy") for r in mine]),
            _median_range([r.cpu_ms_per_request("upstream") for r in mine]),
            f"{statistics.median(r.load.rps for r in mine):.0f}",
            f"{statistics.median(r.other_cores for r in mine):.2f}",
        ])  # fmt: skip
    return rows, medians


def report(rounds: list[_cpu.Round], s: CpuSettings) -> Section:
    background = _epp_background(rounds)
    rows, medians = _rows(rounds, background)
    ratio_rows: list[list[str]] = []
    for listener, label in _LABELS.items():
        ratio = medians[listener] / medians["echo"]
        if listener == "epp_req":
            ratio_rows.append(
                [label, f"{ratio:.2f}x", f"<= {TARGET_RATIO}x", verdict(ratio, TARGET_RATIO)]
            )
        else:
            ratio_rows.append([label, f"{ratio:.2f}x", "(informative)", "-"])
    body = "\n\n".join([
        table([*_COLUMNS, "RPS", "other procs, cores"], rows),
        (f"EPP background (scraping 8 endpoints every 50 ms, no requests): "
         f"{background * 100:.1f} % of one core; subtracted in `bg-corrected`."),
        table(["EPP CPU/request vs echo", "measured", "target", "verdict"], ratio_rows),
    ])  # fmt: skip
    settings = (
        f"{s.rounds} rounds x {s.requests} requests per listener, concurrency {s.concurrency}, "
        f"{s.body_bytes}-byte body, 8 endpoints"
    )
    head = ratio_rows[0]
    summary = ("EPP CPU/request vs echo (request side, 8 endpoints)", head[1], head[2], head[3])
    return Section("EPP CPU per request vs a trivial echo ext_proc", body, settings, summary)
