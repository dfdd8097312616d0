"""What the EPP costs: CPU per request, added latency, scheduling time, scraping CPU, added TTFT.

The five figures of DESIGN.md §6 about the EPP, each a sub-benchmark in its own module, with its
method in that module's docstring (repeated at the end of the results file):

* `cpu`     (`_epp_cpu`): EPP CPU per request vs the trivial echo ext_proc, one Envoy, alternating
  rounds, 2 KB chat body, 8 endpoints; target <= 1.3x.
* `latency` (`_epp_latency`): added latency of Envoy -> BBR -> EPP over Envoy direct at
  concurrency 1; targets <= 2.5 ms p50 over Envoy direct, and <= 0.5 ms p50 over two trivial
  echo hops (our own work over the Python floor).
* `sched`   (`_epp_sched`): scheduling time at 10 / 100 / 1,000 endpoints, in process; target
  <= 200 µs p99 at 100.
* `scrape`  (`_epp_scrape`): the data layer scraping 100 endpoints every 50 ms; target <= 15 % of
  one core.
* `ttft`    (`_epp_ttft`): added TTFT at 220 KB prompts and concurrency 150; target <= 114 ms
  (10x below upstream issue #2928's 1,141 ms).
* `workers` (`_epp_workers`): `igw-epp --workers 2` vs one process: CPU per request within
  1.15x, and how requests spread over the two workers.

`cpu` and `latency` share one set of processes (`_epp_stack`: fixed-answer upstream Envoy,
echo ext_proc, BBR, EPP, gateway Envoy); `ttft` starts its own with slow upstreams. Run
`python -m bench.epp_cost [--quick] [--only cpu --only ttft ...]`. Each sub-benchmark prints a
Markdown table with the target and `met` / `NOT met` beside the figure; the run writes
`bench/results/epp_cost.md` with the command, date and machine. Exit 0 when every selected
measurement ran (targets met or not), 1 when one failed (an error status, a request the EPP
did not count, a process that did not start), 130 on Ctrl-C; every process is stopped in all
cases. `OTEL_*` variables are removed first, so nothing traces.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn

import aiohttp
import uvloop

from bench import (
    _epp_cpu,
    _epp_latency,
    _epp_profiles,
    _epp_sched,
    _epp_scrape,
    _epp_scrape_child,
    _epp_stack,
    _epp_ttft,
    _epp_upstream,
    _epp_workers,
    _epp_workers_ipc,
    _report,
)
from bench._epp_common import Section, table
from bench._errors import BenchmarkError
from bench._paths import RESULTS, repo_relative

_RESULTS = RESULTS / "epp_cost.md"
BENCHMARKS = ("sched", "scrape", "cpu", "latency", "ttft", "workers", "profiles")
_MODULES = (
    _epp_stack, _epp_upstream, _epp_cpu, _epp_latency, _epp_sched, _epp_scrape,
    _epp_scrape_child, _epp_ttft, _epp_workers, _epp_workers_ipc, _epp_profiles,
)  # fmt: skip


class Plan:
    """The settings of every sub-benchmark, quick or full."""

    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.cpu = _epp_cpu.CpuSettings(requests=600, rounds=2) if quick else (
            _epp_cpu.CpuSettings(requests=5000, rounds=4))  # fmt: skip
        self.latency = _epp_latency.LatencySettings(requests=200 if quick else 1000)
        self.sched = _epp_sched.SchedSettings(decisions=300 if quick else 3000)
        self.scrape = _epp_scrape.ScrapeSettings(
            warmup_s=2 if quick else 3, duration_s=5 if quick else 20
        )
        self.ttft = _epp_ttft.TtftSettings(requests=150, rounds=1, warmup=50) if quick else (
            _epp_ttft.TtftSettings(requests=1500, rounds=2))  # fmt: skip
        self.workers = _epp_workers.WorkersSettings(requests=600 if quick else 3000,
                                                    rounds=2 if quick else 4)  # fmt: skip
        self.profiles = dataclasses.replace(self.workers, paced=True)


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.epp_cost", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="a ~30 s smoke run")
    parser.add_argument(
        "--only", action="append", choices=BENCHMARKS, help="run only these (repeatable)"
    )
    parser.add_argument("--output", type=Path, default=_RESULTS, help="results Markdown file")
    return parser.parse_args(argv)


Emit = Callable[[Section], None]


def _with_stack(workdir: Path, plan: Plan, selected: list[str], emit: Emit) -> None:
    """`cpu` and `latency`, on one set of processes."""
    with _epp_stack.Stack.started(workdir) as stack:
        try:
            if "cpu" in selected:
                rounds = uvloop.run(_epp_cpu.measure(stack, plan.cpu))
                emit(_epp_cpu.report(rounds, plan.cpu))
            if "latency" in selected:
                latencies = uvloop.run(_epp_latency.measure(stack, plan.latency))
                emit(_epp_latency.report(latencies, plan.latency))
        except (RuntimeError, OSError, aiohttp.ClientError, TimeoutError) as e:
            raise BenchmarkError(f"{e}\n{stack.log_tails()}") from e


def _ttft(workdir: Path, plan: Plan, emit: Emit) -> None:
    with _epp_stack.Stack.started(workdir, delay_s=plan.ttft.delay_s) as stack:
        try:
            results = uvloop.run(_epp_ttft.measure(stack, plan.ttft))
        except (RuntimeError, OSError, aiohttp.ClientError, TimeoutError) as e:
            raise BenchmarkError(f"{e}\n{stack.log_tails()}") from e
    emit(_epp_ttft.report(results, plan.ttft))


def _workers(workdir: Path, plan: Plan, emit: Emit) -> None:
    with _epp_workers.WorkersStack.started(workdir) as stack:
        try:
            rounds = uvloop.run(_epp_workers.measure(stack, plan.workers))
        except (RuntimeError, OSError, aiohttp.ClientError, TimeoutError) as e:
            raise BenchmarkError(f"{e}\n{stack.log_tails()}") from e
    emit(_epp_workers.report(rounds, plan.workers, _epp_workers_ipc.ipc_cost()))


def _profiles(workdir: Path, plan: Plan, emit: Emit) -> None:
    variants = _epp_profiles.VARIANTS
    with _epp_workers.WorkersStack.started(workdir, variants) as stack:
        try:
            rounds = uvloop.run(_epp_workers.measure(stack, plan.profiles))
        except (RuntimeError, OSError, aiohttp.ClientError, TimeoutError) as e:
            raise BenchmarkError(f"{e}\n{stack.log_tails()}") from e
    emit(_epp_profiles.report(rounds, plan.profiles))


def _text(section: Section) -> str:
    return f"## {section.title}\n\n{section.settings}\n\n{section.body}\n"


def _run(selected: list[str], plan: Plan) -> tuple[list[Section], list[str]]:
    """Every selected sub-benchmark's section, and the failures (each a message)."""
    sections: list[Section] = []
    failures: list[str] = []

    def emit(section: Section) -> None:
        sections.append(section)
        print(_text(section), flush=True)

    steps: list[tuple[str, Callable[[Path], None]]] = [
        ("sched", lambda _: emit(_epp_sched.report(_epp_sched.measure(plan.sched), plan.sched))),
        (
            "scrape",
            lambda _: emit(_epp_scrape.report(_epp_scrape.measure(plan.scrape), plan.scrape)),
        ),
        ("cpu+latency", lambda w: _with_stack(w, plan, selected, emit)),
        ("ttft", lambda w: _ttft(w, plan, emit)),
        ("workers", lambda w: _workers(w, plan, emit)),
        ("profiles", lambda w: _profiles(w, plan, emit)),
    ]
    with tempfile.TemporaryDirectory(prefix="igw-epp-bench-") as workdir:
        for name, step in steps:
            if not any(part in selected for part in name.split("+")):
                continue
            (Path(workdir) / name).mkdir()
            try:
                step(Path(workdir) / name)
            except (RuntimeError, OSError, aiohttp.ClientError, TimeoutError) as e:
                failures.append(f"{name}: {e}")
                print(f"benchmark {name} failed: {e}", file=sys.stderr)
    return sections, failures


def _document(sections: list[Section], failures: list[str], plan: Plan) -> str:
    facts = _report.run_facts({"quick": plan.quick})
    rows = [row for s in sections for row in (s.summary, *s.more)]
    summary = table(["figure", "measured", "target", "verdict"], rows)
    parts = ["# EPP cost benchmarks", summary, "## Run", facts]
    parts += [_text(section) for section in sections]
    if failures:
        parts += ["## Failures", "\n".join(f"- {f.splitlines()[0]}" for f in failures)]
    parts += ["## Method", __doc__ or ""]
    parts += [f"### `{m.__name__.rsplit('.', 1)[-1]}`\n\n{m.__doc__}" for m in _MODULES]
    return "\n\n".join(parts) + "\n"


def _interrupt(_signum: int, _frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    selected: list[str] = args.only or list(BENCHMARKS)
    plan = Plan(args.quick)
    signal.signal(signal.SIGTERM, _interrupt)
    for name in [name for name in os.environ if name.startswith("OTEL_")]:
        del os.environ[name]
    try:
        sections, failures = _run(selected, plan)
    except KeyboardInterrupt:
        print("interrupted; every process was stopped", file=sys.stderr)
        return 130
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(_document(sections, failures, plan))
    print(f"written to {repo_relative(args.output)}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
