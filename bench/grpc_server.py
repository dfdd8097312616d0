"""What the gRPC server costs per ext_proc message: grpc.aio and its alternatives, side by side.

Issue 15, item 2: measure what the grpc.aio server itself costs per message against the
alternatives available here, and keep the cheapest. Method (the BBR benchmark's, feasibility §2):

* Processes: one trivial echo ext_proc per variant (`_echo_extproc.py`: holds the headers, echoes
  the body, nothing else; the same logic in every variant), and one Envoy (2 workers) with one
  listener per variant, alike but for the processor they call (FULL_DUPLEX_STREAMED request
  body, plaintext gRPC, Envoy answers 200 itself once the filter lets the request through).
* Variants: `aio_uvloop` (what igw runs: grpc.aio on uvloop, the baseline), `aio_asyncio` (plain
  asyncio loop), `aio_throughput` (`grpc.optimization_target=throughput`), `aio_nocompress`
  (`grpc.default_compression_algorithm=0`, explicitly none), `aio_no_bdp`
  (`grpc.http2.bdp_probe=0`: no bandwidth-delay pings), `aio_read_write` (the servicer on
  `context.read()`/`context.write()` instead of an async iterator and generator),
  `sync_threads` (the synchronous `grpc.server` on a 32-thread pool).
* Not a variant: `grpc.max_concurrent_streams=16` (as many as the load keeps open) made Envoy
  answer some requests 500 (a stream over the limit fails the FailClose filter), and a limit
  above the load changes nothing.
* Load: a closed loop of `--concurrency` aiohttp workers on uvloop in this process, POSTing the
  same 2,048-byte chat body; one warm-up round per variant, then `--rounds` rounds of each in
  turn, so drift hits all alike.
* Figure: each server process's utime + stime (`/proc/PID/stat`) over its rounds divided by the
  requests; median over rounds, and its ratio to `aio_uvloop`'s median in the same run. A request
  is 4 gRPC messages here (headers and one body chunk in; the headers reply and one streamed
  body chunk out), so CPU per message is a quarter of it. Checks: every answer a 200, and every
  round opened exactly one ext_proc stream per request to the measured variant and none to
  another.

Run `python -m bench.grpc_server [--quick]`; results go to `bench/results/grpc_server.md`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

from bench import _cpu, _gateway, _load, _report
from bench._epp_common import table
from bench._errors import BenchmarkError
from bench._paths import RESULTS, repo_relative
from igw.common.testing import EnvoyProcess, free_port
from igw.e2e.processes import ChildProcess

_RESULTS = RESULTS / "grpc_server.md"
BASELINE = "aio_uvloop"
VARIANTS: dict[str, tuple[str, ...]] = {
    BASELINE: (),
    "aio_asyncio": ("--loop", "asyncio"),
    "aio_throughput": ("--option", "grpc.optimization_target=throughput"),
    "aio_nocompress": ("--option", "grpc.default_compression_algorithm=0"),
    "aio_no_bdp": ("--option", "grpc.http2.bdp_probe=0"),
    "aio_read_write": ("--read-write",),
    "sync_threads": ("--sync-threads", "32"),
}
MESSAGES_PER_REQUEST = 4


class Stack:
    """One echo server per variant and one Envoy with a listener for each; a context manager."""

    def __init__(self, workdir: Path) -> None:
        self.ports = {name: free_port() for name in VARIANTS}
        self.listen_ports = {name: free_port() for name in VARIANTS}
        self.servers = {
            name: ChildProcess(
                name,
                [sys.executable, "-m", "bench._echo_extproc", "--port", str(port), *VARIANTS[name]],
                workdir / f"{name}.log",
            )
            for name, port in self.ports.items()
        }
        admin = free_port()
        configs = [
            _gateway.one_listener(name, admin, self.listen_ports[name], self.ports[name])
            for name in VARIANTS
        ]
        config = configs[0]
        for other in configs[1:]:
            for kind in ("listeners", "clusters"):
                config["static_resources"][kind].extend(other["static_resources"][kind])
        self.envoy = EnvoyProcess(config, concurrency=_gateway.ENVOY_CONCURRENCY, workdir=workdir)
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Stack:
        with contextlib.ExitStack() as stack:
            for name, server in self.servers.items():
                stack.callback(server.stop)
                server.start(ready_port=self.ports[name])
            stack.callback(self.envoy.stop)
            self.envoy.start()
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stack.close()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.listen_ports[name]}/v1/chat/completions"

    def pids(self) -> dict[str, int]:
        out = {n: s.process.pid for n, s in self.servers.items() if s.process is not None}
        if self.envoy.pid is not None:
            out["envoy"] = self.envoy.pid
        return out

    def streams(self) -> dict[str, int]:
        stats = self.envoy.admin_stats("cluster.ext_proc_")
        return {name: stats[f"cluster.ext_proc_{name}.upstream_rq_total"] for name in VARIANTS}


async def _round(
    stack: Stack, session: aiohttp.ClientSession, name: str, requests: int, concurrency: int
) -> _cpu.Round:
    streams = stack.streams()
    pids = {**stack.pids(), "client": os.getpid()}
    before = _cpu.CpuSnapshot.take(pids)
    load = await _load.run_load(
        session, stack.url(name), _load.chat_body(2048), requests=requests, concurrency=concurrency
    )
    await asyncio.sleep(0.1)  # the streams' teardown is billed to this round
    after = _cpu.CpuSnapshot.take(pids)
    if bad := {status: n for status, n in load.statuses.items() if status != 200}:
        raise BenchmarkError(f"{name}: unexpected HTTP statuses {bad}")
    opened = {n: count - streams[n] for n, count in stack.streams().items()}
    if opened != {n: load.requests if n == name else 0 for n in VARIANTS}:
        raise BenchmarkError(f"{name}: ext_proc streams opened {opened}")
    return _cpu.Round(name, load, before, after)


async def _measure(stack: Stack, requests: int, rounds: int, concurrency: int) -> list[_cpu.Round]:
    measured: list[_cpu.Round] = []
    async with _load.new_session(concurrency) as session:
        for name in VARIANTS:
            await _round(stack, session, name, max(500, requests // 10), concurrency)
        for index in range(rounds):
            for name in VARIANTS:
                r = await _round(stack, session, name, requests, concurrency)
                measured.append(r)
                print(
                    f"round {index + 1}/{rounds} {name}: {r.load.rps:.0f} RPS, "
                    f"{r.cpu_ms_per_request(name):.3f} CPU-ms/request",
                    file=sys.stderr,
                )
    return measured


def _summary(rounds: Sequence[_cpu.Round]) -> str:
    medians = {
        name: statistics.median(r.cpu_ms_per_request(name) for r in rounds if r.component == name)
        for name in VARIANTS
    }
    rows = []
    for name in sorted(VARIANTS, key=medians.__getitem__):
        mine = [r for r in rounds if r.component == name]
        cpu = [r.cpu_ms_per_request(name) for r in mine]
        rows.append([
            name, " ".join(VARIANTS[name]) or "(igw's server)",
            f"{medians[name]:.3f} ({min(cpu):.3f}-{max(cpu):.3f})",
            f"{medians[name] * 1000 / MESSAGES_PER_REQUEST:.0f}",
            f"{medians[name] / medians[BASELINE]:.2f}x",
            f"{statistics.median(r.cpu_ms_per_request('envoy') for r in mine):.3f}",
            f"{statistics.median(r.load.rps for r in mine):.0f}",
            f"{statistics.median(r.other_cores for r in mine):.2f}",
        ])  # fmt: skip
    columns = [
        "variant", "how", "server CPU-ms/request", "CPU-µs/message", f"vs {BASELINE}",
        "Envoy CPU-ms/request", "RPS", "other procs, cores",
    ]  # fmt: skip
    return table(columns, rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grpc_server", description=__doc__)
    parser.add_argument("--requests", type=int, default=4000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per variant")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 800 each")
    parser.add_argument("--output", type=Path, default=_RESULTS)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    requests, rounds = (800, 2) if args.quick else (args.requests, args.rounds)
    for name in [name for name in os.environ if name.startswith("OTEL_")]:
        del os.environ[name]
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="igw-grpc-bench-") as workdir:
        stack = Stack(Path(workdir))
        try:
            with stack:
                measured = uvloop.run(_measure(stack, requests, rounds, args.concurrency))
        except (RuntimeError, OSError, aiohttp.ClientError) as e:
            print(f"benchmark failed: {e}", file=sys.stderr)
            return 1
    summary = _summary(measured)
    print(summary)
    settings: dict[str, Any] = {
        "requests_per_round": requests, "rounds_per_variant": rounds,
        "concurrency": args.concurrency, "body_bytes": 2048,
        "envoy_workers": _gateway.ENVOY_CONCURRENCY,
        "load average (1 min) at start, end": f"{load_before:.2f}, {os.getloadavg()[0]:.2f}",
    }  # fmt: skip
    parts = [
        "# gRPC server cost per ext_proc message", summary, "## Run",
        _report.run_facts(settings), "## Method", __doc__ or "",
    ]  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n\n".join(parts) + "\n")
    print(f"written to {repo_relative(args.output)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
