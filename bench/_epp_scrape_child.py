"""The scraping side of the scraping-CPU benchmark: the EPP's `Datastore`, alone in a process.

Run as `python -m bench._epp_scrape_child --ports 9001,9002,... --warmup 3 --duration 20`: on
uvloop (as the EPP runs), it builds the `Datastore` as the EPP does (default
`MetricsDataSource` and `CoreMetricsExtractor`, 50 ms refresh), reconciles one endpoint per port,
waits `--warmup` seconds, then measures its own CPU (utime + stime of the whole process, all
threads, `os.times()`) over `--duration` seconds and prints one JSON line: `cpu_s`, `wall_s`,
`scrapes` (pages fetched whole in the window, the data source's own count)
and `fresh` (endpoints whose metrics were updated in the last second at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

import uvloop

from igw.epp.datalayer import Datastore, MetricsDataSource
from igw.epp.endpoints import Endpoint


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


async def run(ports: list[int], warmup_s: float, duration_s: float, interval_s: float) -> None:
    source = MetricsDataSource()
    async with Datastore(source, refresh_interval_s=interval_s) as store:
        store.reconcile([Endpoint(f"m-{p}-rank-0", "127.0.0.1", p) for p in ports])
        await asyncio.sleep(warmup_s)
        cpu, wall, fetched = _cpu(), time.monotonic(), source.fetched
        await asyncio.sleep(duration_s)
        cpu, wall, fetched = _cpu() - cpu, time.monotonic() - wall, source.fetched - fetched
        now = time.monotonic()
        fresh = sum(1 for s in store.endpoints() if now - s.metrics.updated_at < 1.0)
    print(
        json.dumps({"cpu_s": cpu, "wall_s": wall, "scrapes": fetched, "fresh": fresh}), flush=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ports", required=True, help="comma-separated /metrics ports")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=0.05)
    args = parser.parse_args()
    ports = [int(p) for p in args.ports.split(",")]
    uvloop.run(run(ports, args.warmup, args.duration, args.interval))


if __name__ == "__main__":
    main()
