"""Scraping CPU: the EPP's data layer scraping 100 endpoints every 50 ms.

DESIGN.md §6: metric scraping of 100 endpoints at 50 ms costs at most 15 % of one core. Method:
two processes besides this one. The pages: `python -m igw.epp.testing.metrics_server --count
100`, one aiohttp app on 100 loopback ports, each serving the realistic ~33 KB vLLM page
(`metrics_pages.vllm_page`, uncompressed, as the EPP asks). The scraper:
`bench._epp_scrape_child`, the EPP's own `Datastore` with its default data source and extractor
and nothing else, on uvloop; it measures its own utime + stime over the window after a warm-up
and counts the pages fetched. CPU % = CPU-seconds / wall-seconds x 100 (one core = 100 %). The
expected rate is endpoints / interval = 2,000 pages per second; the achieved rate is reported
beside it, since a scraper that falls behind would look cheaper than it is: below 98 % of it,
the figure judged is CPU per page times the expected rate. The page server's
own CPU over the same span is shown too (it shares the 2 cores). A run where no page was
scraped or not every endpoint is fresh at the end is a failed benchmark.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

from bench import _cpu
from bench._epp_common import Section, table, verdict
from bench._errors import BenchmarkError

TARGET_PERCENT = 15.0
_KEPT_UP = 0.98
"""A run below this share of the expected page rate fell behind; its CPU is then judged as
CPU per page times the expected rate."""


@dataclass(frozen=True, slots=True)
class ScrapeSettings:
    endpoints: int = 100
    interval_s: float = 0.05
    warmup_s: float = 3.0
    duration_s: float = 20.0


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    cpu_s: float
    wall_s: float
    scrapes: int
    fresh: int
    server_cpu_s: float


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _scrape(ports: list[int], s: ScrapeSettings) -> dict[str, float]:
    argv = [
        sys.executable, "-m", "bench._epp_scrape_child", "--ports", ",".join(map(str, ports)),
        "--warmup", str(s.warmup_s), "--duration", str(s.duration_s),
        "--interval", str(s.interval_s),
    ]  # fmt: skip
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        out, _ = child.communicate(timeout=s.warmup_s + s.duration_s + 30)
    finally:
        _stop(child)
    if child.returncode != 0 or not out.strip():
        raise BenchmarkError(f"the scraper exited with status {child.returncode}")
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def measure(s: ScrapeSettings) -> ScrapeResult:
    # -W: runpy warns that the package's __init__ already imported the module; harmless here.
    argv = [sys.executable, "-W", "ignore::RuntimeWarning", "-m", "igw.epp.testing.metrics_server"]
    argv += ["--count", str(s.endpoints)]
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline() if server.stdout else ""
        if not line:
            raise BenchmarkError("the metrics page server did not start")
        ports: list[int] = json.loads(line)["ports"]
        before = _cpu.cpu_seconds(server.pid)
        got = _scrape(ports, s)
        server_cpu = _cpu.cpu_seconds(server.pid) - before
    finally:
        _stop(server)
    if got["scrapes"] <= 0 or got["fresh"] != s.endpoints:
        raise BenchmarkError(f"scraping failed: {got}")
    return ScrapeResult(
        got["cpu_s"], got["wall_s"], int(got["scrapes"]), int(got["fresh"]), server_cpu
    )


def report(r: ScrapeResult, s: ScrapeSettings) -> Section:
    expected = s.endpoints / s.interval_s
    percent = r.cpu_s / r.wall_s * 100
    behind = r.scrapes / r.wall_s < _KEPT_UP * expected
    if behind:  # a scraper that fell behind looks cheaper than it is: judge it at full rate
        percent = max(percent, r.cpu_s / r.scrapes * expected * 100)
    judged = verdict(percent, TARGET_PERCENT) + (
        " (fell behind; at the full rate)" if behind else ""
    )
    rows = [[
        str(s.endpoints), f"{s.interval_s * 1000:.0f} ms",
        f"{r.scrapes / r.wall_s:.0f} / {expected:.0f}",
        f"{r.cpu_s / r.scrapes * 1e6:.0f}", f"{percent:.1f} %",
        f"{r.server_cpu_s / r.wall_s * 100:.0f} %", f"<= {TARGET_PERCENT:.0f} %", judged,
    ]]  # fmt: skip
    columns = ["endpoints", "interval", "pages/s got / expected", "CPU-µs/page", "scraper CPU"]
    columns += ["page server CPU", "target", "verdict"]
    settings = f"{s.warmup_s:.0f} s warm-up, {s.duration_s:.0f} s measured; ~33 KB vLLM page"
    summary = (
        "Scraping CPU, 100 endpoints at 50 ms", f"{percent:.1f} % of a core",
        f"<= {TARGET_PERCENT:.0f} %", judged,
    )  # fmt: skip
    title = "Metric scraping CPU, 100 endpoints every 50 ms"
    return Section(title, table(columns, rows), settings, summary)
