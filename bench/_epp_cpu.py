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
  epp, echo, ... at full speed (saturation), then rounds alternating echo and epp_req at one
  paced rate, `_cpu.PACED_SHARE` of the slower one's saturated rate (`_cpu.paced_rate`).
* Why two loads: at saturation each listener runs at its own rate, and CPU per request falls
  as the rate rises (gRPC and Envoy handle more messages per wake-up), so the slower EPP also
  pays for batching less: measured here, the echo's CPU per request rose from 0.44-0.46 to
  0.54-0.55 ms when paced down to the EPP's saturated rate. The paced rounds compare both at
  the same request rate, which isolates what the EPP's own work costs: that ratio is the
  headline and the target's verdict; the saturated ratio is shown beside it.
* CPU: utime + stime from `/proc/PID/stat` per process over each round, divided by its requests.
  The EPP also scrapes 8 pages 20 times a second whatever the load; that background is measured
  during the echo rounds (where the EPP serves nothing) as CPU-seconds per second and subtracted
  from each EPP round (`bg-corrected`), the raw figure is shown beside it. `other procs` is the
  median over the listener's rounds of the cores that anything else on the machine used
  (`/proc/stat` minus the measured processes): well above 0 means disturbed rounds. Each
  ratio is the median corrected `epp_req` figure over the echo's median of the same load.
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
PACED = ("echo", "epp_req")
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


async def _round(
    stack: Stack, listener: str, requests: int, s: CpuSettings, rate: float | None = None
) -> _cpu.Round:
    streams, served = stack.ext_proc_streams(), stack.epp_requests()
    async with _load.new_session(s.concurrency) as session:
        r = await _cpu.chat_round(
            listener, session, stack.url(listener), stack.pids(),
            requests=requests, concurrency=s.concurrency, body_bytes=s.body_bytes, rate=rate,
        )  # fmt: skip
    _check(stack, listener, r.load, streams, served)
    return r


async def _rounds(
    stack: Stack, s: CpuSettings, listeners: tuple[str, ...], rate: float | None
) -> list[_cpu.Round]:
    rounds: list[_cpu.Round] = []
    load = "saturated" if rate is None else f"paced at {rate:.0f}/s"
    for _ in range(s.rounds):
        for listener in listeners:
            r = await _round(stack, listener, s.requests, s, rate)
            rounds.append(r)
            own = "epp" if listener != "echo" else "echo"
            print(
                f"cpu round {len(rounds)}/{s.rounds * len(listeners)} ({load}) {listener}: "
                f"{r.load.rps:.0f} RPS, {r.cpu_ms_per_request(own):.3f} CPU-ms/request",
                file=sys.stderr,
            )
    return rounds


async def measure(stack: Stack, s: CpuSettings) -> _cpu.LoadRounds:
    for listener in MEASURED:
        await _round(stack, listener, max(300, s.requests // 5), s)
    saturated = await _rounds(stack, s, MEASURED, None)
    rate = _cpu.paced_rate(saturated, PACED)
    return _cpu.LoadRounds(saturated, await _rounds(stack, s, PACED, rate), rate)


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


def _rows(
    rounds: list[_cpu.Round], background: float, listeners: tuple[str, ...]
) -> tuple[list[list[str]], dict[str, float]]:
    """The per-listener table rows, and each listener's median (corrected) CPU-ms per request."""
    medians: dict[str, float] = {}
    rows = []
    for listener in listeners:
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


def report(rounds: _cpu.LoadRounds, s: CpuSettings) -> Section:
    background = _epp_background(rounds.saturated + rounds.paced)
    columns = [*_COLUMNS, "RPS", "other procs, cores"]
    rows, saturated = _rows(rounds.saturated, background, MEASURED)
    paced_rows, paced = _rows(rounds.paced, background, PACED)
    ratio = paced["epp_req"] / paced["echo"]
    ratio_rows = [
        ["EPP, request side only, same request rate (like-for-like)", f"{ratio:.2f}x",
         f"<= {TARGET_RATIO}x", verdict(ratio, TARGET_RATIO)],
        ["EPP, request side only, saturated (each at its own rate)",
         f"{saturated['epp_req'] / saturated['echo']:.2f}x", "(informative)", "-"],
        ["EPP, compatible config (response side too), saturated",
         f"{saturated['epp'] / saturated['echo']:.2f}x", "(informative)", "-"],
    ]  # fmt: skip
    body = "\n\n".join([
        f"Saturated (a closed loop at full speed):\n\n{table(columns, rows)}",
        (f"Paced at {rounds.rate:.0f} requests/s ({_cpu.PACED_SHARE:.0%} of the slower listener's "
         f"saturated rate):\n\n{table(columns, paced_rows)}"),
        (f"EPP background (scraping 8 endpoints every 50 ms, no requests): "
         f"{background * 100:.1f} % of one core; subtracted in `bg-corrected`."),
        table(["EPP CPU/request vs echo", "measured", "target", "verdict"], ratio_rows),
    ])  # fmt: skip
    settings = (
        f"{s.rounds} rounds x {s.requests} requests per listener and load, concurrency "
        f"{s.concurrency}, {s.body_bytes}-byte body, 8 endpoints"
    )
    paced_row, saturated_row = ratio_rows[0], ratio_rows[1]
    summary = (
        "EPP CPU/request vs echo, same rate (request side, 8 endpoints)",
        paced_row[1], paced_row[2], paced_row[3],
    )  # fmt: skip
    more = (("EPP CPU/request vs echo, saturated", saturated_row[1], saturated_row[2], "-"),)
    return Section("EPP CPU per request vs a trivial echo ext_proc", body, settings, summary, more)
