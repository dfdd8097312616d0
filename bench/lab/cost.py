"""The gateway's cost, in the lab's run: the existing benchmarks as sub-steps, plus one new.

Sub-steps (each its own process, run with this Python from the repository root):

* `python -m bench.epp_cost --only sched --only cpu --only latency` (`--quick` in a quick run):
  scheduling time at 10 / 100 / 1,000 endpoints, the EPP's CPU per request against a trivial
  ext_proc, the latency Envoy -> BBR -> EPP adds over Envoy direct;
* `python -m bench.bbr_cpu` (fewer requests than its own default): the BBR's CPU per request;
* `python -m bench.epp_streaming --quick`: the EPP's CPU per streamed response, lean vs
  compatible;
* new, in this process: the memory of the EPP's approximate prefix index (`PrefixIndex`, the
  per-endpoint LRUs of block hashes and the reverse map) at N entries spread over 8 endpoints,
  from `tracemalloc` (Python's own allocations, the figure that grows with the index).

Each sub-step's Markdown goes to the results directory; its summary table is copied into the
lab's report. A sub-step that fails is reported as failed with its exit status; the lab goes on.
"""

from __future__ import annotations

import gc
import random
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

from bench._errors import BenchmarkError
from bench._paths import REPO, repo_relative
from igw.epp.scheduling.plugins._prefix_index import PrefixIndex

INDEX_SIZES = (10_000, 100_000, 500_000)
INDEX_ENDPOINTS = 8


def estimate_seconds(quick: bool) -> float:
    return 75 if quick else 210


def prefix_index_memory(sizes: tuple[int, ...] = INDEX_SIZES) -> list[tuple[int, float]]:
    """(entries, bytes per entry) of a `PrefixIndex` filled with `entries` random hashes."""
    out = []
    rng = random.Random(7)  # noqa: S311 - any hashes will do
    for size in sizes:
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        index = PrefixIndex()
        per_endpoint = size // INDEX_ENDPOINTS
        for e in range(INDEX_ENDPOINTS):
            hashes = [rng.getrandbits(64) for _ in range(per_endpoint)]
            for start in range(0, per_endpoint, 64):  # requests of 64 blocks each
                index.add(f"10.0.0.{e}:8000", hashes[start : start + 64], per_endpoint)
        used = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        if len(index) != per_endpoint * INDEX_ENDPOINTS:
            raise BenchmarkError(f"index holds {len(index)} entries, expected {size}")
        out.append((len(index), used / len(index)))
        del index
    return out


def _summary_table(markdown: str) -> str:
    """The first Markdown table of a results file."""
    lines, found = [], False
    for line in markdown.splitlines():
        if line.startswith("|"):
            found = True
            lines.append(line)
        elif found:
            break
    return "\n".join(lines)


def _section_table(markdown: str, heading: str) -> str:
    """The first Markdown table after the `## <heading>` line of a results file."""
    _, found, rest = markdown.partition(f"## {heading}")
    return _summary_table(rest) if found else ""


def _step(name: str, module: str, args: list[str], out: Path) -> tuple[str, int, float]:
    """Runs `python -m module args` from the repository root, its output into `<name>.log`."""
    log = out / f"{name}.log"
    print(f"  {name}: -m {module} {' '.join(args)} (log: {repo_relative(log)})", flush=True)
    start = time.monotonic()
    with log.open("wb") as sink:
        status = subprocess.run(
            [sys.executable, "-m", module, *args],
            cwd=REPO,
            stdout=sink,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode
    seconds = time.monotonic() - start
    print(f"    exit {status} after {seconds:.0f} s", flush=True)
    return log.read_text(errors="replace"), status, seconds


def _epp_cost(out: Path, *, quick: bool) -> list[str]:
    md = out / "epp_cost.md"
    args = ["--only", "sched", "--only", "cpu", "--only", "latency", "--output", repo_relative(md)]
    _log, status, seconds = _step(
        "epp_cost", "bench.epp_cost", [*args, "--quick"] if quick else args, out
    )
    text = md.read_text() if md.exists() and status == 0 else ""
    table = _summary_table(text)
    sched = _section_table(text, "Scheduling time")
    if sched:
        table += "\n\nScheduling time against the number of endpoints:\n\n" + sched
    return [
        (
            f"### EPP (`python -m bench.epp_cost`, exit {status}, {seconds:.0f} s; details in "
            f"[epp_cost.md](epp_cost.md))"
        ),
        "",
        table or "failed: see epp_cost.log",
        "",
    ]


def _bbr_cpu(out: Path, *, quick: bool) -> list[str]:
    md = out / "bbr_cpu.md"
    requests, rounds = ("1000", "2") if quick else ("4000", "4")
    args = ["--requests", requests, "--rounds", rounds, "--output", repo_relative(md)]
    _log, status, seconds = _step("bbr_cpu", "bench.bbr_cpu", args, out)
    table = _summary_table(md.read_text()) if md.exists() and status == 0 else ""
    return [
        (
            f"### BBR (`python -m bench.bbr_cpu`, exit {status}, {seconds:.0f} s; details in "
            f"[bbr_cpu.md](bbr_cpu.md))"
        ),
        "",
        table or "failed: see bbr_cpu.log",
        "",
    ]


def _epp_streaming(out: Path) -> list[str]:
    log, status, seconds = _step("epp_streaming", "bench.epp_streaming", ["--quick"], out)
    table = _summary_table(log) if status == 0 else ""
    return [
        (
            f"### Streaming responses (`python -m bench.epp_streaming --quick`, exit {status}, "
            f"{seconds:.0f} s; output in epp_streaming.log)"
        ),
        "",
        table or "failed: see epp_streaming.log",
        "",
    ]


def _prefix_index() -> list[str]:
    print("  prefix index memory (in process)", flush=True)
    rows = prefix_index_memory()
    return [
        f"### Prefix index memory (`PrefixIndex`, {INDEX_ENDPOINTS} endpoints, tracemalloc)",
        "",
        "| entries | MiB | bytes per entry |",
        "| --- | --- | --- |",
        *(f"| {n:,} | {n * b / 2**20:.1f} | {b:.0f} |" for n, b in rows),
        "",
        (
            "An entry is one block hash held by one endpoint's LRU (with its share of the "
            "reverse map). Upstream's default `lruCapacityPerServer` is 31,250 blocks, i.e. "
            "250,000 entries for 8 endpoints."
        ),
        "",
    ]


def run(out: Path, *, quick: bool) -> str:
    """Every sub-step; the Markdown section for the lab's report."""
    parts = [
        *_epp_cost(out, quick=quick),
        *_bbr_cpu(out, quick=quick),
        *_epp_streaming(out),
        *_prefix_index(),
    ]
    return "\n".join(parts)
