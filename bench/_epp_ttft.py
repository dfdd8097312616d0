"""Added time to first token at 220 KB prompts and concurrency 150.

DESIGN.md §6: at 220 KB prompts and 150 concurrent requests, the TTFT the gateway adds must be
at least 10x below the 1,141 ms upstream's issue #2928 reported, i.e. at most 114 ms. Method:

* Processes: a second `_epp_stack` whose 8 fixed-answer upstreams hold every completion for
  `delay_s` (Envoy's fault filter; `/metrics` answers at once). That delay stands for the model
  server's own TTFT: identical on every path, so it cancels out of the difference, and it sets
  the request rate of the closed loop as real model servers do (at most 150 / `delay_s` per
  second) instead of letting the client saturate the 2 cores. A simulated pod fleet was not
  used on purpose: its prefill queues and the EPP's load-aware picks (vs round-robin direct)
  would change the model-side TTFT between the paths and hide the gateway's share.
* Load: `_load.run_load`, 150 aiohttp workers in a closed loop POSTing the same ~220 KB chat
  body (`_load.chat_body`); the answer is one small non-streamed JSON, so the time to its whole
  answer is the time to first token. Rounds alternate `direct` (Envoy only), `epp` (the EPP in
  upstream's compatible config, as in #2928) and `chain` (BBR then EPP), after one warm-up round
  each.
* Figures: mean, p50 and p99 per path over all its requests; added = path minus direct. The
  target is judged on the mean added TTFT of the EPP path (the issue reports one figure).
  Every answer must be a 200 and the EPP must have counted every request sent through it.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass

from bench import _load
from bench._epp_common import Section, percentile, table, verdict
from bench._epp_stack import Stack
from bench._errors import BenchmarkError

UPSTREAM_ADDED_MS = 1141.0
TARGET_MS = UPSTREAM_ADDED_MS / 10
PATHS = ("direct", "epp", "chain")


@dataclass(frozen=True, slots=True)
class TtftSettings:
    requests: int
    rounds: int
    concurrency: int = 150
    body_bytes: int = 220 * 1024
    delay_s: float = 1.0
    warmup: int = 150
    """Requests of each path's warm-up round."""


async def _phase(stack: Stack, path: str, requests: int, s: TtftSettings) -> _load.LoadResult:
    async with _load.new_session(s.concurrency) as session:
        load = await _load.run_load(
            session, stack.url(path), _load.chat_body(s.body_bytes),
            requests=requests, concurrency=s.concurrency,
        )  # fmt: skip
    if bad := {k: n for k, n in load.statuses.items() if k != 200}:
        raise BenchmarkError(f"ttft {path}: unexpected HTTP statuses {bad}")
    return load


async def measure(stack: Stack, s: TtftSettings) -> dict[str, list[_load.LoadResult]]:
    for path in PATHS:
        await _phase(stack, path, s.warmup, s)
    served, sent = stack.epp_requests(), 0
    out: dict[str, list[_load.LoadResult]] = {path: [] for path in PATHS}
    for n in range(s.rounds):
        for path in PATHS:
            load = await _phase(stack, path, s.requests, s)
            out[path].append(load)
            sent += 0 if path == "direct" else load.requests
            print(
                f"ttft round {n + 1}/{s.rounds} {path}: {load.rps:.0f} RPS, "
                f"p50 {percentile(load.latencies_s, 0.5) * 1000:.0f} ms",
                file=sys.stderr,
            )
    if (rose := stack.epp_requests() - served) != sent:
        raise BenchmarkError(f"ttft: EPP counted {rose} requests, {sent} were sent through it")
    return out


def report(results: dict[str, list[_load.LoadResult]], s: TtftSettings) -> Section:
    stats: dict[str, tuple[float, float, float]] = {}
    rows = []
    for path, loads in results.items():
        ms = [x * 1000 for load in loads for x in load.latencies_s]
        stats[path] = (statistics.fmean(ms), percentile(ms, 0.5), percentile(ms, 0.99))
        rps = statistics.median(load.rps for load in loads)
        rows.append([path, *(f"{v:.1f}" for v in stats[path]), f"{rps:.0f}"])
    added = []
    for path in ("epp", "chain"):
        mean, p50, p99 = (a - b for a, b in zip(stats[path], stats["direct"], strict=True))
        target = f"<= {TARGET_MS:.0f} ms mean" if path == "epp" else "(informative)"
        met = verdict(mean, TARGET_MS) if path == "epp" else "-"
        added.append(
            [f"{path} - direct", f"{mean:+.1f}", f"{p50:+.1f}", f"{p99:+.1f}", target, met]
        )
    body = "\n\n".join(
        [
            table(["path", "TTFT mean ms", "p50 ms", "p99 ms", "RPS"], rows),
            table(["added TTFT", "mean ms", "p50 ms", "p99 ms", "target", "verdict"], added),
            f"Upstream issue #2928 reported {UPSTREAM_ADDED_MS:.0f} ms added.",
        ]
    )
    settings = (
        f"{s.rounds} rounds x {s.requests} requests per path, concurrency {s.concurrency}, "
        f"{s.body_bytes:,}-byte body, model-server TTFT stand-in {s.delay_s:.2f} s, 8 endpoints"
    )
    epp = added[0]
    summary = ("Added TTFT (EPP), 220 KB, concurrency 150", f"{epp[1]} ms mean", epp[4], epp[5])
    return Section("Added TTFT, 220 KB prompts, concurrency 150", body, settings, summary)
