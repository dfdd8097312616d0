"""EPP failover with `--ha-enable-leader-election`: from the leader's end to the standby ready.

What is measured: two `igw-epp` processes (`--pool-name llama --ha-enable-leader-election`,
plaintext, no tracing, `-v 1`) of one InferencePool, against the fake Kubernetes API server
(`igw.common.testing.kube_api.FakeKubeApi`, in this process, holding the pool, one ready pod and
the Lease). The replicas use the Lease durations the flag gives, controller-runtime's defaults
(lease 15 s, renew deadline 10 s, retry period 2 s), which upstream's EPP keeps too.

Each round waits for a steady state: exactly one replica answers gRPC health `readiness`
SERVING, the other's datastore lists the pod (admin `ListEndpoints`: a warm standby), and then
2.2 retry periods (the longest pause between two of the standby's attempts, so it has read the
Lease) plus a random fraction of a retry period (so the leader's end falls anywhere between two
renewals). Then the leader ends and the standby's health port is asked `readiness` every
`--poll` seconds until it answers SERVING; the time from the end to that answer is the figure.
A fresh replica then joins as the next standby. Two ways to end, alternating:

* killed: SIGKILL, nothing written on the way out (a crash, a lost node). The standby takes over
  a lease duration after it last *saw* the Lease change (client-go judges expiry by its own
  clock): the leader's last renewal came at most a retry period before the kill, and the standby
  reads at most 2.2 retry periods apart, then takes over at its next attempt. Expect from
  `lease - retry` to `lease + 4.4 x retry` (13 to 23.8 s with the defaults).
* clean stop: SIGTERM, as Kubernetes stops a pod: health NOT_SERVING, the Lease released (holder
  empty, `leaseDurationSeconds: 1`) while the gRPC server drains. The standby takes over at its
  next attempt: expect up to 2.2 retry periods (4.4 s). Upstream releases only once its servers
  have stopped, so its figure adds the drain.

Left out: in a cluster, the kubelet and Envoy see readiness only at their next probe (the chart's
readiness period is 2 s), and a killed pod's node may take longer to be noticed.

Run `python -m bench.epp_failover [--rounds N] [--poll S]`; it prints the table and writes
`bench/results/epp_failover.md` (`--output`). A replica that fails to start (after retries with
fresh ports) or a steady state not reached exits 1. The replicas are stopped at the end, and die
with this process anyway (PR_SET_PDEATHSIG, `igw.e2e.processes`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2

from bench._errors import BenchmarkError, StartError
from bench._paths import RESULTS, command_line, repo_relative
from igw.common.kube import LeaseTimings
from igw.common.testing import free_port
from igw.common.testing.kube_api import FakeKubeApi
from igw.e2e.processes import ChildProcess
from igw.epp.admin import AdminClient
from igw.epp.testing.kube_objects import inference_pool, pod

_RESULTS = RESULTS / "epp_failover.md"
_BIN = Path(sys.executable).parent
_NS, _POOL, _SELECTOR = "serving", "llama", {"app": "vllm"}
_KILLED, _CLEAN = "killed (SIGKILL, no release)", "clean stop (SIGTERM, release)"
_START_ATTEMPTS = 3
_LEASE = LeaseTimings()  # what `--ha-enable-leader-election` runs with


@dataclass(frozen=True, slots=True)
class Settings:
    rounds: int
    poll_s: float
    lease_duration_s: float = _LEASE.lease_duration_s
    renew_deadline_s: float = _LEASE.renew_deadline_s
    retry_period_s: float = _LEASE.retry_period_s

    @property
    def settle_s(self) -> float:
        """How long a steady state may take before the run is not trusted."""
        return 3 * self.lease_duration_s + 30


class Replica:
    """One `igw-epp` process; its gRPC health port answers readiness and ListEndpoints."""

    def __init__(self, workdir: Path, number: int) -> None:
        self.health_port = free_port()
        argv = [
            str(_BIN / "igw-epp"), "--pool-name", _POOL, "--pool-namespace", _NS,
            "--ha-enable-leader-election", "--grpc-port", str(free_port()),
            "--grpc-health-port", str(self.health_port), "--metrics-port", str(free_port()),
            "--host", "127.0.0.1", "--secure-serving=false", "--tracing=false",
            "--metrics-endpoint-auth=false", "-v", "1",
        ]  # fmt: skip
        self.child = ChildProcess(f"epp-{number}", argv, workdir / f"epp-{number}.log")

    async def start(self) -> None:
        # Spawned here (the death signal follows the forking thread), waited for off the loop:
        # the replica's start-up asks the fake API server, which this loop serves.
        self.child.spawn()
        await asyncio.to_thread(self.child.wait_ready, self.health_port)

    async def ready(self) -> bool:
        """gRPC health `readiness`, as a readiness probe asks it."""
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.health_port}") as channel:
            check = channel.unary_unary(
                "/grpc.health.v1.Health/Check",
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            )
            answer = await check(health_pb2.HealthCheckRequest(service="readiness"), timeout=10)
            return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    async def warm(self) -> bool:
        """Its datastore lists the pool's pod."""
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.health_port}") as channel:
            inventory = await AdminClient(channel, timeout_s=10).list_endpoints()
            return bool(inventory.endpoints)

    def end(self, *, release: bool) -> None:
        if self.child.process is not None:
            self.child.process.send_signal(signal.SIGTERM if release else signal.SIGKILL)

    async def stop(self) -> None:
        await asyncio.to_thread(self.child.stop)


async def _start_replica(workdir: Path, number: int) -> Replica:
    """A running replica, after at most `_START_ATTEMPTS` tries with fresh ports."""
    for attempt in range(1, _START_ATTEMPTS + 1):
        replica = Replica(workdir, number * 10 + attempt)
        try:
            await replica.start()
        except RuntimeError as e:
            if attempt == _START_ATTEMPTS:
                raise StartError(str(e)) from e
            print(f"start attempt {attempt} failed: {str(e).splitlines()[0]}", file=sys.stderr)
            continue
        return replica
    raise AssertionError("unreachable")


async def _steady(replicas: list[Replica], settings: Settings) -> tuple[Replica, Replica]:
    """Wait until one replica is ready and the other is a warm standby (module docstring)."""
    deadline = time.monotonic() + settings.settle_s
    while time.monotonic() < deadline:
        ready = [await replica.ready() for replica in replicas]
        if sorted(ready) == [False, True]:
            leader, standby = replicas if ready[0] else replicas[::-1]
            if await standby.warm():
                phase = random.uniform(0, settings.retry_period_s)  # noqa: S311 - no secret
                await asyncio.sleep(2.2 * settings.retry_period_s + phase)
                if await leader.ready() and not await standby.ready():
                    return leader, standby
        await asyncio.sleep(0.05)
    raise BenchmarkError(f"no steady leader and warm standby within {settings.settle_s:.0f} s")


async def _fail_over(leader: Replica, standby: Replica, *, release: bool, poll_s: float) -> float:
    """End the leader; seconds until the standby answers `readiness` SERVING."""
    began = time.monotonic()
    leader.end(release=release)
    # Polling on purpose: readiness is what a probe asks over the wire; there is nothing to await.
    while not await standby.ready():  # noqa: ASYNC110
        await asyncio.sleep(poll_s)
    elapsed = time.monotonic() - began
    await leader.stop()
    return elapsed


async def _measure(settings: Settings, workdir: Path) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {_KILLED: [], _CLEAN: []}
    async with FakeKubeApi() as api:
        os.environ["KUBECONFIG"] = str(api.kubeconfig(workdir / "kubeconfig"))
        api.put(inference_pool(_POOL, _SELECTOR, [8000], namespace=_NS))
        api.put(pod("vllm-0", "127.0.0.1", _SELECTOR, namespace=_NS))
        replicas: list[Replica] = []
        try:
            replicas = [await _start_replica(workdir, 0), await _start_replica(workdir, 1)]
            for round_ in range(1, settings.rounds + 1):
                for case in (_KILLED, _CLEAN):
                    leader, standby = await _steady(replicas, settings)
                    seconds = await _fail_over(
                        leader, standby, release=case == _CLEAN, poll_s=settings.poll_s
                    )
                    results[case].append(seconds)
                    print(f"round {round_}/{settings.rounds} {case}: {seconds:.2f} s",
                          file=sys.stderr)  # fmt: skip
                    number = 2 * round_ + (case == _CLEAN)
                    replicas = [standby, await _start_replica(workdir, number)]
        finally:
            for replica in replicas:
                await replica.stop()
    return results


def _table(results: dict[str, list[float]]) -> str:
    lines = [
        "| leader's end | rounds | median s | max s | min s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for case, seconds in results.items():
        lines.append(
            f"| {case} | {len(seconds)} | {statistics.median(seconds):.2f} | "
            f"{max(seconds):.2f} | {min(seconds):.2f} |"
        )
    return "\n".join(lines)


def _rounds(results: dict[str, list[float]]) -> str:
    lines = ["| round | killed, s | clean stop, s |", "| --- | --- | --- |"]
    for index, (killed, clean) in enumerate(zip(results[_KILLED], results[_CLEAN], strict=True)):
        lines.append(f"| {index + 1} | {killed:.2f} | {clean:.2f} |")
    return "\n".join(lines)


def _lease_line(settings: Settings) -> str:
    return (
        f"Lease: `leaseDurationSeconds` {settings.lease_duration_s:g}, renew deadline "
        f"{settings.renew_deadline_s:g} s, retry period {settings.retry_period_s:g} s "
        f"(controller-runtime's defaults); readiness polled every {settings.poll_s * 1000:g} ms."
    )


def _facts(settings: Settings) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    versions = ", ".join(
        [f"Python {platform.python_version()}"]
        + [f"{name} {metadata.version(name)}" for name in ("kubernetes", "grpcio", "aiohttp")]
    )
    facts = {
        "command": f"`{command_line(sys.orig_argv)}`",
        "date": now,
        "machine": f"{len(os.sched_getaffinity(0))} CPUs (nproc), Linux {platform.release()}",
        "versions": versions,
        **{name: str(value) for name, value in asdict(settings).items()},
    }
    return "\n".join(f"- {name}: {value}" for name, value in facts.items())


def _document(results: dict[str, list[float]], settings: Settings) -> str:
    parts = [
        "# EPP failover with leader election",
        "Seconds from the leader's end to the standby answering gRPC health `readiness` SERVING.",
        _table(results),
        _lease_line(settings),
        "Per round, in run order:",
        _rounds(results),
        "## Run",
        _facts(settings),
        "## Method",
        __doc__ or "",
    ]
    return "\n\n".join(parts).rstrip() + "\n"


def _parse_args(argv: Sequence[str]) -> tuple[Settings, Path]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.epp_failover", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds per way to end (5)")
    parser.add_argument("--poll", type=float, default=0.01, help="readiness poll period, s")
    parser.add_argument("--output", type=Path, default=_RESULTS, help="results Markdown file")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.poll <= 0:
        parser.error("--rounds must be at least 1 and --poll positive")
    return Settings(args.rounds, args.poll), args.output


def main(argv: Sequence[str] | None = None) -> int:
    settings, output = _parse_args(sys.argv[1:] if argv is None else argv)
    try:
        with tempfile.TemporaryDirectory(prefix="igw-bench-") as workdir:
            results = asyncio.run(_measure(settings, Path(workdir)))
    except KeyboardInterrupt:
        print("interrupted; every replica was stopped", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, grpc.RpcError) as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        return 1
    print(_table(results), _lease_line(settings), sep="\n\n")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(_document(results, settings))
    print(f"written to {repo_relative(output)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
