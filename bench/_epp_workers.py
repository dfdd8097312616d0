"""`igw-epp --workers 2` against one worker: CPU per request, and how requests spread.

The issue's acceptance (docs/concepts/workers.md): with two workers, the sharing costs little
(EPP CPU per request within 1.15x of one worker's) and the load spreads over both processes.
Method:

* Processes: the fixed-answer upstream Envoy (`_epp_upstream`, 8 ports, scraped every 50 ms), two
  EPPs on the default config, `one` (`igw-epp`, one process) and `two` (`igw-epp --workers 2`:
  the parent and its two workers), and one gateway Envoy (2 workers) with a listener for each,
  the EPP's filter on the request side only (as `_epp_cpu`'s like-for-like `epp_req`), then
  ORIGINAL_DST on the EPP's answer. For `two`, Envoy puts at most `ENVOY_STREAMS` streams on one
  connection and `ENVOY_STREAMS_PER_CONNECTION` on one connection in all (`spread_streams`), so
  that it opens enough connections, and new ones as it goes, for the kernel to spread.
* Load: `_load.run_load`, a closed loop of `concurrency` clients POSTing one 2,048-byte chat
  body (so every request also makes a prefix-index insert that the two workers share). One
  warm-up round each at full speed, whose rates are reported, then rounds alternating `one`,
  `two`, `one`, ... at full speed: more than one worker is for a load one process cannot
  serve, so they are compared where each is busy. Paced at one rate instead (`paced`, what
  `_epp_profiles` does for two single-process EPPs), each of two workers would run at half the
  rate of the one process and pay more per request for it (CPU per request falls as a
  process's request rate rises, `bench._epp_cpu`): 1.21x measured that way (with the
  earlier 2 ms sharing window, which gave 1.16x at full speed).
* CPU: utime + stime (`/proc/PID/stat`) of every process of the EPP under load (for `two`: the
  parent and both workers) over the round, per request. Both EPPs scrape the same 8 pages
  whatever the load; each one's background (CPU-seconds per second while the other one's
  round runs) is subtracted from its own rounds. The headline is the median corrected `two`
  over the median corrected `one`.
* Spread: each worker's `inference_objective_request_total` (its own Prometheus port) over the
  `two` rounds; the target is that the less busy worker takes at least `MIN_SHARE` of them.
* The sharing mechanism alone: `_epp_workers_ipc` (informative).

The stack and rounds take any pair of EPP variants (`Variant`: own flags, number of workers);
`_epp_profiles` compares two configurations with them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import _cpu, _epp_workers_ipc, _load
from bench._epp_common import Section, table, verdict
from bench._epp_stack import merge_listeners
from bench._epp_upstream import upstream_bootstrap
from bench._errors import BenchmarkError
from igw.common.testing import (
    EnvoyProcess,
    ExtProcFilter,
    OriginalDstCluster,
    free_port,
    gateway_bootstrap,
)
from igw.e2e.processes import ChildProcess

ENVOY_STREAMS = 4
"""The ext_proc cluster's `max_concurrent_streams` for a variant with workers (`spread_streams`)."""
ENVOY_STREAMS_PER_CONNECTION = 200
"""... and its `max_requests_per_connection`: a connection carries this many streams, then Envoy
opens a new one (`spread_streams`)."""
TARGET_RATIO = 1.15
MIN_SHARE = 0.25
_BIN = Path(sys.executable).parent


@dataclass(frozen=True, slots=True)
class Variant:
    """One EPP of a paired comparison: its name, its own flags, how many worker processes."""

    name: str
    argv: tuple[str, ...] = ()
    workers: int = 1


VARIANTS = (Variant("one"), Variant("two", workers=2))
"""This module's pair; `_epp_profiles` compares two configurations the same way."""


@dataclass(frozen=True, slots=True)
class WorkersSettings:
    requests: int
    rounds: int
    concurrency: int = 16
    body_bytes: int = 2048
    paced: bool = False
    """Measured rounds at one rate for both EPPs (`_cpu.PACED_SHARE` of the slower warm-up's),
    not at full speed."""


@dataclass(frozen=True, slots=True)
class WorkersRound:
    epp: str
    round: _cpu.Round
    served: tuple[int, ...]
    """Requests each process of the EPP counted in the round (one entry without workers)."""


def spread_streams(ext_proc: ExtProcFilter) -> ExtProcFilter:
    """`ext_proc` with at most `ENVOY_STREAMS` streams per connection, so that Envoy opens
    enough connections for the kernel to spread over the workers sharing the port (a cap the EPP
    advertises itself makes Envoy 1.40 fail streams with REFUSED_STREAM: see workers.md), and
    `ENVOY_STREAMS_PER_CONNECTION` in all, so that Envoy replaces its connections and the kernel
    places each new one again: a worker that drew more connections than its share does not keep
    them."""
    return dataclasses.replace(
        ext_proc,
        max_concurrent_streams=ENVOY_STREAMS,
        max_requests_per_connection=ENVOY_STREAMS_PER_CONNECTION,
    )


def _metric_total(port: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    prefix = "inference_objective_request_total{"
    return int(sum(float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x.startswith(prefix)))


class WorkersStack:
    """Upstream Envoy, two EPPs (`variants`), the gateway Envoy (module docstring)."""

    def __init__(self, workdir: Path, variants: tuple[Variant, ...] = VARIANTS) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.variants = {v.name: v for v in variants}
        upstreams = [free_port() for _ in range(8)]
        endpoints = workdir / "endpoints.yaml"
        rows = (
            f"  - {{name: up-{i}, address: 127.0.0.1, port: {p}}}\n"
            for i, p in enumerate(upstreams)
        )
        endpoints.write_text("endpoints:\n" + "".join(rows))
        self.upstream = EnvoyProcess(
            upstream_bootstrap(free_port(), upstreams), concurrency=1, workdir=workdir
        )
        self.grpc = {name: free_port() for name in self.variants}
        self.listen = {name: free_port() for name in self.variants}
        self.metrics = {name: free_port() for name in self.variants}
        self.epps = {
            name: ChildProcess(name, self._epp_argv(v, endpoints), workdir / f"epp-{name}.log")
            for name, v in self.variants.items()
        }
        self.envoy = EnvoyProcess(self._gateway(), concurrency=2, workdir=workdir)

    def worker_dir(self, name: str) -> Path:
        return self.workdir / f"workers-{name}"

    def _epp_argv(self, v: Variant, endpoints: Path) -> list[str]:
        argv = [
            str(_BIN / "igw-epp"), "--grpc-port", str(self.grpc[v.name]),
            "--grpc-health-port", str(free_port()), "--metrics-port", str(self.metrics[v.name]),
            "--host", "127.0.0.1", "--endpoints-file", str(endpoints),
            "--secure-serving=false", "--tracing=false", "--metrics-endpoint-auth=false",
            "-v", "1", *v.argv,
        ]  # fmt: skip
        if v.workers > 1:  # each worker reports its own metrics port in its ready file
            argv[argv.index("--metrics-port") + 1] = "0"
            argv += ["--workers", str(v.workers), "--worker-dir", str(self.worker_dir(v.name))]
        return argv

    def _gateway(self) -> dict[str, Any]:
        return merge_listeners({
            name: gateway_bootstrap(
                listen_port=self.listen[name], admin_port=free_port(),
                ext_procs=[self._ext_proc(v)], routes=(),
                clusters=[OriginalDstCluster("pool")], default_cluster="pool", access_log=False,
            )
            for name, v in self.variants.items()
        })  # fmt: skip

    def _ext_proc(self, v: Variant) -> ExtProcFilter:
        ext_proc = ExtProcFilter(f"epp_{v.name}", self.grpc[v.name], tls=False)
        return spread_streams(ext_proc) if v.workers > 1 else ext_proc

    @classmethod
    @contextlib.contextmanager
    def started(
        cls, workdir: Path, variants: tuple[Variant, ...] = VARIANTS, attempts: int = 3
    ) -> Iterator[WorkersStack]:
        """A running stack after at most `attempts` tries (a port another process took between
        picking and binding it kills a start); stopped on leaving."""
        for attempt in range(1, attempts + 1):
            stack = cls(workdir / f"attempt-{attempt}", variants)
            try:
                running = stack.running()
                running.__enter__()
            except RuntimeError as e:
                print(f"start attempt {attempt} failed: {str(e).splitlines()[0]}", file=sys.stderr)
                if attempt == attempts:
                    raise
                continue
            try:
                yield stack
            finally:
                running.__exit__(None, None, None)
            return

    @contextlib.contextmanager
    def running(self) -> Iterator[WorkersStack]:
        with contextlib.ExitStack() as stack:
            stack.callback(self.upstream.stop)
            self.upstream.start()
            for name, child in self.epps.items():
                stack.callback(child.stop)
                child.start(ready_port=self.grpc[name], timeout_s=60)
            self._wait_workers()
            stack.callback(self.envoy.stop)
            self.envoy.start()
            time.sleep(1.0)  # both EPPs' first scrapes, so that every endpoint is fresh
            yield self

    def _wait_workers(self) -> None:
        deadline = time.monotonic() + 60
        files = [
            self.worker_dir(v.name) / f"w{i}.json"
            for v in self.variants.values() if v.workers > 1 for i in range(v.workers)
        ]  # fmt: skip
        while not all(f.exists() for f in files):
            if time.monotonic() > deadline:
                raise BenchmarkError(f"workers never ready\n{self.log_tails()}")
            time.sleep(0.05)  # another process's file: nothing to wait on

    def workers(self, name: str) -> list[dict[str, int]]:
        """What each worker of variant `name` wrote in its ready file (none for one process)."""
        v = self.variants[name]
        if v.workers == 1:
            return []
        folder = self.worker_dir(name)
        return [json.loads(folder.joinpath(f"w{i}.json").read_text()) for i in range(v.workers)]

    def pids(self) -> dict[str, int]:
        out = {name: c.process.pid for name, c in self.epps.items() if c.process is not None}
        for name in self.variants:
            out.update({f"{name}-w{i}": w["pid"] for i, w in enumerate(self.workers(name))})
        return out

    def served(self, name: str) -> tuple[int, ...]:
        """Requests each process of variant `name` counted so far."""
        workers = self.workers(name)
        if not workers:
            return (_metric_total(self.metrics[name]),)
        return tuple(_metric_total(w["metrics_port"]) for w in workers)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.listen[name]}/v1/chat/completions"

    def log_tails(self) -> str:
        return "\n".join(f"--- {n}\n{c.log_tail(15)}" for n, c in self.epps.items())


def _cpu_of(r: _cpu.Round, epp: str) -> float:
    """CPU-seconds every process of `epp` used over the round."""
    names = [n for n in r.after.processes if n == epp or n.startswith(f"{epp}-")]
    return sum(r.after.processes[n] - r.before.processes[n] for n in names)


@dataclass(frozen=True, slots=True)
class WorkersRounds:
    measured: list[WorkersRound]
    warmup: dict[str, float]
    """EPP -> its warm-up round's requests per second, at full speed."""
    rate: float | None
    """The measured rounds' pace, or None at full speed."""


async def _round(
    stack: WorkersStack, epp: str, requests: int, s: WorkersSettings, rate: float | None = None
) -> WorkersRound:
    served = stack.served(epp)
    async with _load.new_session(s.concurrency) as session:
        r = await _cpu.chat_round(
            epp, session, stack.url(epp), stack.pids(), requests=requests,
            concurrency=s.concurrency, body_bytes=s.body_bytes, rate=rate,
        )  # fmt: skip
    if bad := {code: n for code, n in r.load.statuses.items() if code != 200}:
        raise BenchmarkError(f"{epp}: unexpected HTTP statuses {bad}")
    counted = tuple(b - a for a, b in zip(served, stack.served(epp), strict=True))
    if sum(counted) != requests:
        raise BenchmarkError(f"{epp}: the EPP counted {counted} of {requests} requests")
    return WorkersRound(epp, r, counted)


async def measure(stack: WorkersStack, s: WorkersSettings) -> WorkersRounds:
    """A warm-up round per EPP at full speed, then `s.rounds` rounds of each, alternating, at
    full speed or (`s.paced`) at `_cpu.PACED_SHARE` of the slower warm-up's rate."""
    warmup = {}
    for epp in stack.variants:
        warmup[epp] = (await _round(stack, epp, max(200, s.requests // 2), s)).round.load.rps
    rate = _cpu.PACED_SHARE * min(warmup.values()) if s.paced else None
    rounds: list[WorkersRound] = []
    for _ in range(s.rounds):
        for epp in stack.variants:
            r = await _round(stack, epp, s.requests, s, rate)
            rounds.append(r)
            print(
                f"round {len(rounds)}/{s.rounds * len(stack.variants)} {epp}: "
                f"{r.round.load.rps:.0f} RPS, "
                f"{_cpu_of(r.round, epp) * 1000 / s.requests:.3f} CPU-ms/request {r.served}",
                file=sys.stderr,
            )
    return WorkersRounds(rounds, warmup, rate)


def rates_line(rounds: WorkersRounds) -> str:
    """The full-speed warm-up rates, and the pace taken from them."""
    warm = ", ".join(f"{epp} {rps:.0f}" for epp, rps in rounds.warmup.items())
    if rounds.rate is None:
        return f"Measured rounds at full speed (warm-up requests/s: {warm})."
    return (
        f"Measured rounds paced at {rounds.rate:.0f} requests/s ({_cpu.PACED_SHARE:.0%} of the "
        f"slower EPP's full-speed warm-up rate; warm-up requests/s: {warm})."
    )


def corrected(rounds: list[WorkersRound], epp: str) -> list[float]:
    """`epp`'s CPU-ms per request in its rounds, less its background from the other's rounds."""
    idle = [r.round for r in rounds if r.epp != epp]
    background = statistics.median(_cpu_of(r, epp) / (r.after.at - r.before.at) for r in idle)
    return [
        (_cpu_of(r.round, epp) - background * (r.round.after.at - r.round.before.at))
        * 1000 / r.round.load.requests
        for r in rounds if r.epp == epp
    ]  # fmt: skip


def report(run: WorkersRounds, s: WorkersSettings, ipc: _epp_workers_ipc.IpcCost) -> Section:
    rounds = run.measured
    per = {epp: corrected(rounds, epp) for epp in ("one", "two")}
    ratio = statistics.median(per["two"]) / statistics.median(per["one"])
    served = [sum(r.served[i] for r in rounds if r.epp == "two") for i in range(2)]
    share = min(served) / max(1, sum(served))
    rows = [
        [epp, f"{statistics.median(v):.3f} ({min(v):.3f}-{max(v):.3f})",
         f"{statistics.median(r.round.load.rps for r in rounds if r.epp == epp):.0f}"]
        for epp, v in per.items()
    ]  # fmt: skip
    checks = [
        ["CPU/request, 2 workers vs 1", f"{ratio:.2f}x", f"<= {TARGET_RATIO}x",
         verdict(ratio, TARGET_RATIO)],
        ["requests taken by the less busy worker", f"{share:.0%} ({served[0]} / {served[1]})",
         f">= {MIN_SHARE:.0%}", "met" if share >= MIN_SHARE else "NOT met"],
    ]  # fmt: skip
    body = "\n\n".join([
        rates_line(run),
        table(["EPP", "CPU-ms/request, bg-corrected (range)", "RPS"], rows),
        table(["figure", "measured", "target", "verdict"], checks),
        _epp_workers_ipc.ipc_table(ipc),
    ])  # fmt: skip
    settings = (
        f"{s.rounds} rounds x {s.requests} requests per EPP, concurrency {s.concurrency}, "
        f"{s.body_bytes}-byte body, 8 endpoints, gateway Envoy with 2 workers"
    )
    cost, spread = checks
    return Section(
        "`igw-epp --workers 2` vs one process", body, settings,
        ("EPP CPU/request, --workers 2 vs 1", cost[1], cost[2], cost[3]),
        (("--workers 2: share of the less busy worker", spread[1], spread[2], spread[3]),),
    )  # fmt: skip
