"""BBR CPU per request against a trivial echo ext_proc, side by side through one Envoy.

DESIGN.md §6 sets the target: the BBR's CPU per request at most 1.1x that of a trivial echo
ext_proc measured in the same run. Method (feasibility §2, reduced to the one ratio):

* Processes: the echo server (`bench._echo_extproc`: holds the headers, echoes the body, nothing
  else), the BBR as the chart runs it (`igw.bbr.cli --streaming`, default plugins, uvloop) but
  plaintext like the echo, and one Envoy (2 workers) with a listener in front of each. Both
  listeners are alike but for their processor (FULL_DUPLEX_STREAMED request bodies) and Envoy
  answers every request itself with a 200 once the filter lets it through (`bench._gateway`).
* Load: a closed loop of `--concurrency` aiohttp workers on uvloop, in this process, POSTing the
  same 2,048-byte chat-completions body with a `model` field (`bench._load`). One warm-up round per
  listener, then `--rounds` pairs of rounds alternating echo, BBR, echo, BBR ..., so slow drift in
  the machine hits both alike: first at full speed (saturated), then paced at one request rate
  for both, `_cpu.PACED_SHARE` of the slower listener's median saturated rate.
* Why two loads: at saturation each listener runs at its own rate, and CPU per request falls as
  the rate rises (gRPC and Envoy handle more messages per wake-up), so the slower one also pays
  for batching less (`bench._epp_cpu` measured the echo's CPU per request rising ~20 % when
  paced down to the EPP's rate). Paced, both run at the same rate and the ratio isolates the
  BBR's own work: the headline and the target's verdict; the saturated ratio is shown beside it.
* CPU: utime + stime of each process from `/proc/PID/stat` before and after every round, divided
  by the round's requests. All processes share this machine's cores, so a saturated RPS is a
  CPU-saturation figure; CPU per request is the figure that carries over. A ratio compares the
  medians over each listener's rounds of one load; the per-round table also shows the cores
  that anything else on the machine used (and the hypervisor's steal), and the per-pair ratios
  show the run's spread.
* Checks, every round: every answer is a 200, Envoy opened exactly one ext_proc stream per request
  to the measured listener's processor and none to the other, and the BBR's `bbr_success_total`
  rose by the requests of its rounds only. A failed check, an error or a failed start exits 1;
  the target being missed does not (this is a measurement).

Run `python -m bench.bbr_cpu [--quick] [--requests N --rounds N --concurrency N]`; it writes
`bench/results/bbr_cpu.md` (`--output`). `OTEL_*` variables are removed first so that the BBR
runs without tracing, its default. Every process is stopped at the end, on failure, on Ctrl-C
and on SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import NoReturn

import aiohttp
import uvloop

from bench import _cpu, _gateway, _load, _report
from bench._errors import BenchmarkError
from bench._paths import RESULTS, repo_relative

_RESULTS = RESULTS / "bbr_cpu.md"
"""Pause after a round's last answer, so the streams' teardown is billed to that round."""


@dataclass(frozen=True, slots=True)
class Settings:
    requests_per_round: int
    rounds_per_listener: int
    concurrency: int
    warmup_requests: int
    body_bytes: int = 2048
    envoy_workers: int = _gateway.ENVOY_CONCURRENCY


def _parse_args(argv: Sequence[str]) -> tuple[Settings, Path]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bbr_cpu", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--requests", type=int, default=10_000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per listener")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument(
        "--quick", action="store_true", help="a ~10 s smoke run: 3 rounds of 1,500 each"
    )
    parser.add_argument("--output", type=Path, default=_RESULTS, help="results Markdown file")
    args = parser.parse_args(argv)
    requests, rounds = (1500, 3) if args.quick else (args.requests, args.rounds)
    if requests < 1 or rounds < 1 or args.concurrency < 1:
        parser.error("--requests, --rounds and --concurrency must be at least 1")
    settings = Settings(
        requests_per_round=requests,
        rounds_per_listener=rounds,
        concurrency=args.concurrency,
        warmup_requests=max(500, requests // 10),
    )
    return settings, args.output


def _check_round(
    gateway: _gateway.Gateway,
    component: str,
    load: _load.LoadResult,
    streams_before: dict[str, int],
    successes_before: int,
) -> None:
    if unexpected := {status: n for status, n in load.statuses.items() if status != 200}:
        raise BenchmarkError(f"{component}: unexpected HTTP statuses (status: count) {unexpected}")
    streams = gateway.ext_proc_streams()
    opened = {name: streams[name] - streams_before[name] for name in streams}
    expected = {name: load.requests if name == component else 0 for name in streams}
    if opened != expected:
        raise BenchmarkError(f"{component}: ext_proc streams opened {opened}, expected {expected}")
    processed = gateway.bbr_successes() - successes_before
    if processed != expected["bbr"]:
        raise BenchmarkError(f"{component}: bbr_success_total rose by {processed}")


async def _round(
    gateway: _gateway.Gateway,
    session: aiohttp.ClientSession,
    component: str,
    requests: int,
    settings: Settings,
    *,
    rate: float | None = None,
) -> _cpu.Round:
    streams, successes = gateway.ext_proc_streams(), gateway.bbr_successes()
    r = await _cpu.chat_round(
        component, session, gateway.url(component), gateway.pids(), requests=requests,
        concurrency=settings.concurrency, body_bytes=settings.body_bytes, rate=rate,
    )  # fmt: skip
    _check_round(gateway, component, r.load, streams, successes)
    return r


async def _rounds(
    gateway: _gateway.Gateway,
    session: aiohttp.ClientSession,
    settings: Settings,
    rate: float | None,
) -> list[_cpu.Round]:
    rounds: list[_cpu.Round] = []
    total = settings.rounds_per_listener * len(_gateway.COMPONENTS)
    load = "saturated" if rate is None else f"paced at {rate:.0f}/s"
    for _ in range(settings.rounds_per_listener):
        for component in _gateway.COMPONENTS:
            r = await _round(
                gateway, session, component, settings.requests_per_round, settings, rate=rate
            )
            rounds.append(r)
            print(
                f"round {len(rounds)}/{total} ({load}) {component}: {r.load.rps:.0f} RPS, "
                f"{r.cpu_ms_per_request(component):.3f} CPU-ms/request",
                file=sys.stderr,
            )
    return rounds


async def _measure(gateway: _gateway.Gateway, settings: Settings) -> _cpu.LoadRounds:
    async with _load.new_session(settings.concurrency) as session:
        for component in _gateway.COMPONENTS:
            await _round(gateway, session, component, settings.warmup_requests, settings)
        saturated = await _rounds(gateway, session, settings, None)
        rate = _cpu.paced_rate(saturated, _gateway.COMPONENTS)
        paced = await _rounds(gateway, session, settings, rate)
        return _cpu.LoadRounds(saturated, paced, rate)


def _run(settings: Settings) -> _cpu.LoadRounds | None:
    """The measured rounds, or None after reporting why the benchmark failed."""
    with tempfile.TemporaryDirectory(prefix="igw-bench-") as workdir:
        gateway = _gateway.Gateway(Path(workdir))
        try:
            with gateway:
                return uvloop.run(_measure(gateway, settings))
        except (RuntimeError, OSError, aiohttp.ClientError) as e:
            print(f"benchmark failed: {e}\n{gateway.log_tails()}", file=sys.stderr)
            return None


def _interrupt(_signum: int, _frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    settings, output = _parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _interrupt)
    for name in [name for name in os.environ if name.startswith("OTEL_")]:
        del os.environ[name]
    try:
        rounds = _run(settings)
    except KeyboardInterrupt:
        print("interrupted; every process was stopped", file=sys.stderr)
        return 130
    if rounds is None:
        return 1
    print(*_report.tables(rounds), _report.headline(rounds), sep="\n\n")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(_report.document(rounds, asdict(settings), __doc__ or ""))
    print(f"written to {repo_relative(output)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
