"""The `learned-latency` profile against upstream's default: EPP CPU per request in one run.

Issue 14's acceptance: the EPP's CPU per request with the new profile stays within 10 % of the
default profile's in the same `make bench-epp` run. Method: `_epp_workers`' paired stack and
rounds, with two single-process EPPs, `default` (no profile flag: upstream's default) and
`learned` (`--config-profile learned-latency`), alternating rounds of the same load (a closed loop
of `concurrency` clients POSTing one 2,048-byte chat body, the filter on the request side only,
paced at one rate for both, `WorkersSettings.paced`: two single processes compared at the same
request rate, as `_epp_cpu` compares the EPP with the echo);
each EPP's background (scraping 8 pages every 50 ms, measured while the other one's round runs)
is subtracted from its own rounds. The headline is the median corrected `learned` over the median
corrected `default`.
"""

from __future__ import annotations

import statistics

from bench._epp_common import Section, table, verdict
from bench._epp_workers import Variant, WorkersRounds, WorkersSettings, corrected, rates_line

TARGET_RATIO = 1.10
VARIANTS = (Variant("default"), Variant("learned", ("--config-profile", "learned-latency")))


def report(run: WorkersRounds, s: WorkersSettings) -> Section:
    rounds = run.measured
    per = {v.name: corrected(rounds, v.name) for v in VARIANTS}
    ratio = statistics.median(per["learned"]) / statistics.median(per["default"])
    rows = [
        [name, f"{statistics.median(v):.3f} ({min(v):.3f}-{max(v):.3f})",
         f"{statistics.median(r.round.load.rps for r in rounds if r.epp == name):.0f}"]
        for name, v in per.items()
    ]  # fmt: skip
    check = ("EPP CPU/request, learned-latency vs default profile", f"{ratio:.2f}x",
             f"<= {TARGET_RATIO}x", verdict(ratio, TARGET_RATIO))  # fmt: skip
    body = "\n\n".join([
        rates_line(run),
        table(["EPP profile", "CPU-ms/request, bg-corrected (range)", "RPS"], rows),
        table(["figure", "measured", "target", "verdict"], [list(check)]),
    ])  # fmt: skip
    settings = (
        f"{s.rounds} rounds x {s.requests} requests per EPP, concurrency {s.concurrency}, "
        f"{s.body_bytes}-byte body, 8 endpoints, gateway Envoy with 2 workers"
    )
    return Section("`--config-profile learned-latency` vs the default profile", body, settings,
                   check, ())  # fmt: skip
