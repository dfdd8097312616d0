"""`python -m bench.soak`: N requests through the local gateway; does any process keep growing?

Method (repeated in the report):

* The gateway is `make run`'s (`igw.e2e.gateway.LocalGateway`: Envoy, the BBR, the EPP in the
  lean response mode, the simulator's pods in one process; FailClose), on free ports, with the
  simulator at `--time-scale` (realistic H100 timings, answered that many times sooner: a soak
  counts requests, not seconds).
* `--concurrency` clients in a closed loop (`bench._load.closed_loop`) send `--requests`
  requests of a seeded mix (`bench._soak_mix`): chat and completions, streamed and not, the
  base model and the LoRA adapter, prompts from a few prefix-sharing families, bad bodies the
  gateway refuses with a 400, and streams the client abandons after the first event.
* Every `--sample-every` answered requests, each process's VmRSS (/proc/PID/status) and open
  file descriptors (/proc/PID/fd) are read (`bench._soak_probe`). The growth per 100k requests is
  the slope fitted after `--warmup` requests (`bench._soak_report`).
* Each kind of request has one expected outcome (a 2xx, a 4xx, or the client's own disconnect);
  any other (a 5xx, a transport error, a stream without `[DONE]`) is a failure.

Writes `<out>/soak.md`, `soak.json` and `soak.png` (default bench/results), also at every
checkpoint (a twentieth of the run) marked as partial, so a long run that is stopped leaves its
figures so far. Exit 0 when nothing failed, 1 on a failure or a gateway that did not start, 130
on Ctrl-C.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench import _soak_probe as probe
from bench import _soak_report as report
from bench._load import closed_loop, new_session
from bench._local_gateway import main as gateway_bench_main
from bench._local_gateway import start_gateway
from bench._paths import RESULTS, repo_relative
from bench._soak_client import OUTCOMES, send
from bench._soak_mix import KINDS, Planned, plan
from igw.e2e.gateway import LocalGateway

__all__ = ["main", "parse_args", "run"]

METHOD = (__doc__ or "").partition("Method (repeated in the report):")[2].partition("\n\nWrites")[0]
METHOD = METHOD.strip()
CHECKPOINTS = 20
_TIMEOUT = aiohttp.ClientTimeout(total=60)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--requests", type=int, default=1_000_000, help="how many (1,000,000)")
    parser.add_argument("--concurrency", type=int, default=16, help="closed-loop clients (16)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample-every", type=int, default=1000, help="requests (1000)")
    parser.add_argument("--warmup", type=int, help="requests before growth counts (10%%)")
    parser.add_argument("--time-scale", type=float, default=100.0, help="simulator's (100)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="default bench/results")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.sample_every < 1:
        parser.error("--requests, --concurrency and --sample-every must be positive")
    if args.warmup is None:
        args.warmup = args.requests // 10
    return args


@dataclass(slots=True)
class Soak:
    """The running soak's counts and samples; only the event loop's thread touches them."""

    requests: int
    sample_every: int
    checkpoint_every: int
    pids: Mapping[str, Callable[[], int | None]]
    on_checkpoint: Callable[[Soak], None]
    start: float = field(default_factory=time.perf_counter)
    sent: int = 0
    done: int = 0
    by_kind: dict[str, collections.Counter[str]] = field(default_factory=dict)
    failures: dict[tuple[str, str], str] = field(default_factory=dict)
    """(kind, outcome) -> the first such unexpected outcome, described."""
    samples: list[dict[str, Any]] = field(default_factory=list)

    def sample(self) -> None:
        readings = probe.sample(self.pids)
        procs = {n: None if r is None else {"pid": r.pid, "rss_kib": r.rss_kib, "fds": r.fds}
                 for n, r in readings.items()}  # fmt: skip
        self.samples.append(
            {"requests": self.done, "t": round(time.perf_counter() - self.start, 3), "procs": procs}
        )

    def record(self, request: Planned, outcome: str, detail: str) -> None:
        kind = request.kind
        self.by_kind.setdefault(kind.name, collections.Counter())[outcome] += 1
        self.done += 1
        if outcome != kind.expect and (kind.name, outcome) not in self.failures:
            self.failures[(kind.name, outcome)] = f"{kind.name}: {detail} (request {self.done})"
        if self.done % self.sample_every == 0:
            self.sample()
        if self.done % self.checkpoint_every == 0 and self.done < self.requests:
            self.on_checkpoint(self)

    @property
    def failed(self) -> int:
        return sum(
            n
            for kind in KINDS
            for o, n in self.by_kind.get(kind.name, {}).items()
            if o != kind.expect
        )


async def drive(soak: Soak, url: str, concurrency: int, seed: int) -> float:
    """Sends the soak's requests in a closed loop; returns its seconds."""
    requests = plan(seed)
    async with new_session(concurrency, timeout=_TIMEOUT) as session:

        async def send_next(_worker: int) -> bool:
            if soak.sent >= soak.requests:
                return False
            soak.sent += 1
            request = next(requests)
            soak.record(request, *await send(session, url, request))
            return True

        soak.sample()
        seconds = await closed_loop(concurrency, send_next, ramp_s=1.0)
    if soak.samples[-1]["requests"] != soak.done:
        soak.sample()
    return seconds


def result(soak: Soak, args: argparse.Namespace, command: str, seconds: float) -> dict[str, Any]:
    """Everything the report and the JSON say, so far."""
    totals: collections.Counter[str] = collections.Counter()
    for counts in soak.by_kind.values():
        totals.update(counts)
    partial = soak.done < args.requests
    ran = f"{soak.done:,} of {args.requests:,} requests" + (
        " (PARTIAL: still running or stopped)" if partial else ""
    )
    facts = [
        f"Command: `{command}`",
        (
            f"Ran: {ran} in {seconds:,.0f} s: {soak.done / max(seconds, 1e-9):,.0f} requests/s "
            f"with {args.concurrency} closed-loop clients; seed {args.seed}."
        ),
        (
            f"Sampled every {args.sample_every:,} requests ({len(soak.samples)} samples); "
            f"warm-up {args.warmup:,} requests; simulator time-scale {args.time_scale:g}."
        ),
        f"Machine: {os.cpu_count()} cores, shared with whatever else ran.",
    ]
    growth = report.growth(soak.samples, list(soak.pids), args.warmup)
    return {
        "facts": facts, "partial": partial, "requests_planned": args.requests,
        "requests_done": soak.done, "seconds": seconds,
        "requests_per_s": soak.done / max(seconds, 1e-9), "concurrency": args.concurrency,
        "seed": args.seed, "sample_every": args.sample_every, "warmup": args.warmup,
        "totals": {o: totals.get(o, 0) for o in OUTCOMES}, "unexpected": soak.failed,
        "by_kind": {k: dict(v) for k, v in soak.by_kind.items()},
        "failure_examples": list(soak.failures.values()), "growth": growth,
        "verdicts": verdicts(soak, growth), "samples": soak.samples,
    }  # fmt: skip


def verdicts(soak: Soak, growth: Mapping[str, Mapping[str, Any]]) -> list[str]:
    totals: collections.Counter[str] = collections.Counter()
    for counts in soak.by_kind.values():
        totals.update(counts)
    lines = [", ".join(f"{o}: {totals.get(o, 0):,}" for o in OUTCOMES) + "."]
    lines.append(
        f"FAILURES: {soak.failed:,} requests had an outcome their kind was not induced to have."
        if soak.failed
        else "No unexpected outcome: every 5xx-free kind answered, every induced 400 and "
        "disconnect happened as planned, no transport error."
    )
    growing = [
        f"{name} RSS {f['rss_mib_per_100k']:+.2f} MiB, FDs {f['fds_per_100k']:+.1f} per 100k"
        for name, f in growth.items() if f["growing"]
    ]  # fmt: skip
    limits = f"limits {report.RSS_LIMIT_MIB:g} MiB and {report.FD_LIMIT:g} FDs per 100k"
    lines.append(
        f"Still growing after warm-up ({limits}): " + "; ".join(growing) + "."
        if growing
        else f"RSS and open FDs flat after warm-up in every process ({limits})."
    )
    restarted = [f"{n} {f['restarts']}" for n, f in growth.items() if f["restarts"]]
    if restarted:
        lines.append("Processes restarted during the run: " + ", ".join(restarted) + ".")
    return lines


def write(out: Path, data: Mapping[str, Any], names: Sequence[str]) -> Path:
    """soak.md, soak.json and soak.png under `out`; returns the Markdown's path."""
    out.mkdir(parents=True, exist_ok=True)
    report.plot(data["samples"], names, data["warmup"], out / "soak.png")
    (out / "soak.json").write_text(json.dumps(data, indent=1) + "\n")
    path = out / "soak.md"
    path.write_text(report.markdown(data, METHOD, "soak.png"))
    return path


async def run(args: argparse.Namespace, command: str) -> int:
    sim_options = {"time-scale": args.time_scale}
    with tempfile.TemporaryDirectory(prefix="igw-soak-") as tmp:
        try:
            gateway = await start_gateway(
                lambda ports, workdir: LocalGateway(ports, workdir, sim_options=sim_options),
                Path(tmp),
            )
        except RuntimeError as e:
            print(f"the gateway did not start: {e}", file=sys.stderr)
            return 1
        try:
            data = await _soak(gateway, args, command)
        finally:
            await gateway.stop()
    print("\n".join(data["verdicts"]))
    return 1 if data["unexpected"] else 0


async def _soak(gateway: LocalGateway, args: argparse.Namespace, command: str) -> dict[str, Any]:
    pids = probe.gateway_pids(gateway)

    def checkpoint(soak: Soak) -> None:
        seconds = time.perf_counter() - soak.start
        data = result(soak, args, command, seconds)
        write(args.out, data, list(pids))
        now = {n: f"{r['rss_mib_end']:.0f} MiB/{r['fds_end']:.0f} fds"
               for n, r in data["growth"].items() if r["rss_mib_end"] is not None}  # fmt: skip
        print(f"   {soak.done:,} done, {data['requests_per_s']:.0f}/s, "
              f"unexpected {soak.failed}, {now}", flush=True)  # fmt: skip

    every = max(args.requests // CHECKPOINTS, args.sample_every)
    soak = Soak(args.requests, args.sample_every, every, pids, checkpoint)
    seconds = await drive(soak, gateway.url, args.concurrency, args.seed)
    data = result(soak, args, command, seconds)
    print(f"report: {repo_relative(write(args.out, data, list(pids)))}", flush=True)
    return data


def main(argv: Sequence[str] | None = None) -> int:
    return gateway_bench_main("bench.soak", argv, parse_args, run)


if __name__ == "__main__":
    sys.exit(main())
