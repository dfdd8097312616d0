"""`python -m bench.flow_control`: flow control off and on, on one overloaded fleet and one load.

Method (repeated in the report):

* The gateway is `make run`'s (`igw.e2e.gateway.LocalGateway`: Envoy, BBR, EPP and 4 simulator
  ranks) with `examples/flow-control/sim.yaml` (2 running requests per rank at real H100 speed)
  and the objectives critical=10 and batch=0, in the default lean response mode (with a
  concurrency-detector the EPP still follows each response to its end, so a request counts in
  flight until it finishes), as the README runs it. "on" runs
  `examples/flow-control/epp.yaml`; "off" the same file without the `flowControl` feature gate:
  the same plugins, saturation detector and scheduling, but every request is sent on at once
  and waits in the engines' queues. Each mode gets a fresh gateway (cold caches).
* The load is open loop: one seeded Poisson stream per client class (objective, tenant; see
  `bench._flow_control_load`), together `--load` times the pool's capacity (ranks x
  max-num-seqs / one request's seconds on the preset's timing), for `--duration` seconds, then
  up to `--drain` seconds for the answers. Both modes get exactly the same requests at exactly
  the same times.
* Then the EPP's CPU (utime + stime from /proc/PID/stat) over `--window` seconds twice: idle,
  then with the pool saturated by long requests and `--backlog` more waiting behind them (in
  the EPP's queues with flow control on, in the engines' with it off). The dispatcher must not
  busy-wait: on, the second window may cost at most `NEAR_IDLE_CORES` more than the first. Then
  the waiting clients disconnect, and the EPP's queue gauge must return to zero.

Writes `<out>/report.md`, `<out>/results.json` and `<out>/flow-control.png`; `--quick` (about
two minutes) writes to bench/results/tmp/flow-control-quick. Exit 0 when both modes ran, 1 when
a gateway failed, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from bench import _flow_control_report as report
from bench._cpu import cpu_seconds
from bench._errors import BenchmarkError
from bench._flow_control_load import CLASSES, MAX_TOKENS, Probe, Timeline, run_classes
from bench._local_gateway import main as gateway_bench_main
from bench._local_gateway import start_gateway
from bench._paths import REPO, RESULTS, repo_relative
from igw.e2e import pool
from igw.e2e.gateway import LocalGateway
from igw.sim.engine.presets import PRESETS

__all__ = ["main"]

METHOD = (__doc__ or "").partition("Method (repeated in the report):")[2].partition("\n\nWrites")[0]
METHOD = METHOD.strip()
EXAMPLE = REPO / "examples" / "flow-control"
OBJECTIVES = {"critical": 10, "batch": 0}
PROMPT_TOKENS = 500
"""About a request's prompt (2 kB of English), for the capacity estimate only."""
HOLD_TOKENS = 4000
"""The hold phase's answers: long enough (~50 s) to keep the pool busy through the windows."""


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.flow_control", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about two minutes in all")
    parser.add_argument("--load", type=float, default=2.0, help="x the pool's capacity (2)")
    parser.add_argument("--duration", type=float, help="seconds of arrivals (60; quick 15)")
    parser.add_argument("--drain", type=float, help="seconds for the answers (90; quick 25)")
    parser.add_argument("--window", type=float, help="CPU window seconds (10; quick 3)")
    parser.add_argument("--backlog", type=int, default=40, help="requests waiting (40)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--modes", type=lambda text: text.split(","), default=["off", "on"],
        help="which runs, in order (off,on)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, help="default bench/results/flow-control")
    args = parser.parse_args(argv)
    quick = args.quick
    args.duration = args.duration or (15.0 if quick else 60.0)
    args.drain = args.drain or (25.0 if quick else 90.0)
    args.window = args.window or (3.0 if quick else 10.0)
    args.out = args.out or (
        RESULTS / "tmp" / "flow-control-quick" if quick else RESULTS / "flow-control"
    )
    return args


def capacity_rps(sim_options: dict[str, object]) -> float:
    """Answers per second the pool gives at most: every rank's slots, each request's time."""
    timing = PRESETS["llama-3.1-8b-h100"].timing
    slots = int(str(sim_options["max-num-seqs"]))
    context = PROMPT_TOKENS + MAX_TOKENS // 2
    seconds = timing.prefill_seconds(PROMPT_TOKENS) + MAX_TOKENS * timing.decode_seconds(
        slots, slots * context
    )
    ranks = pool.SIM_PORTS
    return ranks * slots / (seconds / float(str(sim_options["time-scale"])))


def _epp_config(mode: str, workdir: Path) -> Path:
    if mode == "on":
        return EXAMPLE / "epp.yaml"
    text = (EXAMPLE / "epp.yaml").read_text()
    off = text.replace('featureGates: ["flowControl"]', "featureGates: []")
    if off == text:
        raise BenchmarkError(
            "examples/flow-control/epp.yaml no longer turns the gate on as expected"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "epp-off.yaml"
    path.write_text(off)
    return path


async def _wait_for(check: Callable[[], Awaitable[bool]], timeout_s: float) -> bool:
    async with asyncio.timeout(timeout_s):
        while not await check():  # noqa: ASYNC110 - the gateway's metrics, polled
            await asyncio.sleep(0.2)
    return True


async def _cores(pid: int, window_s: float) -> float:
    before, start = cpu_seconds(pid), time.perf_counter()
    await asyncio.sleep(window_s)
    return (cpu_seconds(pid) - before) / (time.perf_counter() - start)


async def _hold(
    gateway: LocalGateway, probe: Probe, args: argparse.Namespace, slots: int
) -> dict[str, Any]:
    """The CPU windows (module docstring): idle, then saturated with a backlog; then leave."""
    pid = gateway.epp.process.pid if gateway.epp.process else 0
    idle = await _cores(pid, args.window)
    body = {"model": pool.BASE_MODEL, "max_tokens": HOLD_TOKENS,
            "messages": [{"role": "user", "content": "Tell me a long story."}]}  # fmt: skip
    url = f"{gateway.url}/v1/chat/completions"
    headers = CLASSES[-1].headers

    async def post(session: aiohttp.ClientSession) -> None:
        async with session.post(url, json=body, headers=headers) as response:
            await response.read()

    async def waiting() -> float:
        return sum((await probe.queued()).values()) + (await probe.engines())[1]

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        tasks = [asyncio.create_task(post(session)) for _ in range(slots + args.backlog)]
        try:
            try:
                await _wait_for(lambda: _at_least(waiting, args.backlog), 60)
            except TimeoutError:
                raise BenchmarkError(
                    f"no backlog after 60 s: {await waiting():.0f} waiting"
                ) from None
            saturation = await probe.saturation()
            queued, (_, engine_waiting) = (
                sum((await probe.queued()).values()),
                await probe.engines(),
            )
            busy = await _cores(pid, args.window)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    with_suppressed = await _settle(probe)
    return {"idle_cores": idle, "busy_cores": busy, "epp_queued": queued,
            "engine_waiting": engine_waiting, "saturation": saturation,
            "queued_after": with_suppressed}  # fmt: skip


async def _at_least(read: Callable[[], Awaitable[float]], value: float) -> bool:
    return await read() >= value


async def _settle(probe: Probe) -> float:
    """The EPP's queued requests once the clients have gone (0 at once, or after 15 s)."""
    with contextlib.suppress(TimeoutError):
        await _wait_for(lambda: _at_most(probe, 0), 15)
    return sum((await probe.queued()).values())


async def _at_most(probe: Probe, value: float) -> bool:
    return sum((await probe.queued()).values()) <= value


async def _start(mode: str, workdir: Path, sim_options: dict[str, object]) -> LocalGateway:
    """A started gateway (`bench._local_gateway.start_gateway`: retried on fresh ports)."""
    epp_config = _epp_config(mode, workdir)
    return await start_gateway(
        lambda ports, attempt_dir: LocalGateway(
            ports,
            attempt_dir,
            epp_config=epp_config,
            objectives=OBJECTIVES,
            sim_options=sim_options,
        ),
        workdir,
    )


async def run_mode(
    mode: str, args: argparse.Namespace, rate: float, workdir: Path
) -> dict[str, Any]:
    sim_options = pool.read_sim_options(EXAMPLE / "sim.yaml")
    gateway = await _start(mode, workdir, sim_options)
    try:
        p = gateway.ports
        async with aiohttp.ClientSession() as control:
            probe = Probe(
                control, f"http://127.0.0.1:{p.epp_metrics}/metrics",
                [f"http://127.0.0.1:{port}/metrics" for port in p.sim_ports],
            )  # fmt: skip
            timeline = Timeline(probe)
            poller = asyncio.create_task(timeline.poll(asyncio.get_running_loop().time()))
            try:
                url = f"{gateway.url}/v1/chat/completions"
                answers = await run_classes(url, rate, args.duration, args.drain, args.seed)
            finally:
                poller.cancel()
            queue_p90 = await probe.queue_time_p90()
            slots = pool.SIM_PORTS * int(str(sim_options["max-num-seqs"]))
            hold = await _hold(gateway, probe, args, slots)
    finally:
        await gateway.stop()
    by_objective: dict[str, list[Any]] = {}
    for name, done in answers.items():
        by_objective.setdefault(name.split("/")[0], []).extend(done)
    return {
        "objectives": {o: report.figures(a) for o, a in by_objective.items()},
        "classes": {name: report.figures(a) for name, a in answers.items()},
        "throughput": report.throughput([a for done in answers.values() for a in done]),
        "priorities": OBJECTIVES,
        "queue_time_p90": queue_p90,
        "hold": hold,
        "timeline": timeline.samples,
    }


async def run(args: argparse.Namespace, command: str) -> int:
    sim_options = pool.read_sim_options(EXAMPLE / "sim.yaml")
    capacity = capacity_rps(sim_options)
    rate = capacity * args.load
    facts = [
        f"Command: `{command}`",
        (
            f"Pool: {pool.SIM_PORTS} simulator ranks, {sim_options}; capacity about "
            f"{capacity:.1f} answers/s; offered {rate:.1f} requests/s ({args.load:g}x) for "
            f"{args.duration:g} s, drain up to {args.drain:g} s; seed {args.seed}."
        ),
        "Client classes: " + ", ".join(f"{c.name} {c.share:.0%}" for c in CLASSES) + ".",
        f"Machine: {os.cpu_count()} cores.",
    ]
    print("\n".join(facts), flush=True)
    modes: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="igw-flow-control-") as tmp:
        for mode in args.modes:
            print(f"== flow control {mode}", flush=True)
            try:
                modes[mode] = await run_mode(mode, args, rate, Path(tmp) / mode)
            except (RuntimeError, OSError) as e:
                print(
                    f"flow control {mode} failed: {e}\n(logs in {Path(tmp) / mode})",
                    file=sys.stderr,
                )
                return 1
            for objective, f in modes[mode]["objectives"].items():
                print(f"   {objective}: {f}", flush=True)
            print(f"   hold: {modes[mode]['hold']}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    plot_name = "flow-control.png"
    report.plot(modes, args.out / plot_name)
    (args.out / "report.md").write_text(report.markdown(modes, facts, METHOD, plot_name))
    results = {"facts": facts, "modes": modes}
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print("\n".join(report.verdicts(modes)))
    print(f"report: {repo_relative(args.out / 'report.md')}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return gateway_bench_main("bench.flow_control", argv, parse_args, run)


if __name__ == "__main__":
    sys.exit(main())
