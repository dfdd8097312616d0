"""Fuzz the ext_proc surface of a running `igw-bbr` or `igw-epp` (issue 13 item 4).

    python -m bench.fuzz_extproc --service bbr --seed 1 --count 100000
    python -m bench.fuzz_extproc --service epp --seed 1 --replay 4711

Starts the service from its real command line (`bench._fuzz.service`), plays `--count` random and
adversarial ext_proc streams at it (`bench._fuzz.cases`: orders Envoy never sends, bodies split at
every byte, giant and malformed headers, wrong JSON types, duplicate end-of-stream, cancellation
after any message, invalid UTF-8, `1e400`, deep nesting, every processing-mode combination), and
checks each stream's end (`bench._fuzz.oracle`) and the process between batches and after the run
(`bench._fuzz.run`: alive, SERVING, no open request left, RSS growth per 10k streams). Case i of a
seed is the same on every run: `--replay i` plays that one alone and prints what went each way.
Exit status 1 when any check failed. `--output FILE` appends the summary to FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench._fuzz.cases import make_case
from bench._fuzz.oracle import play
from bench._fuzz.report import summary
from bench._fuzz.run import RunResult, run
from bench._fuzz.service import Service, ServiceName
from bench._paths import command_line
from igw.common.testing.messages import ext_proc_call

__all__ = ["main"]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fuzz_extproc",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--service", choices=("bbr", "epp", "both"), default="both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=1000, help="streams per service")
    parser.add_argument("--concurrency", type=int, default=8, help="streams at a time")
    parser.add_argument("--deadline", type=float, default=10.0, help="seconds a stream may take")
    parser.add_argument("--replay", type=int, metavar="INDEX", help="play case INDEX alone")
    parser.add_argument("--output", type=Path, help="append the summary to this file")
    parser.add_argument("--workdir", type=Path, help="service logs (default: a temporary dir)")
    return parser.parse_args(argv)


async def _fuzz(name: ServiceName, args: argparse.Namespace, workdir: Path) -> RunResult:
    service = await asyncio.to_thread(Service.start, name, workdir / name)
    try:
        return await run(
            service, seed=args.seed, count=args.count, concurrency=args.concurrency,
            deadline_s=args.deadline,
            progress=lambda r: print(f"{name}: {r.ran:,}/{r.count:,}", file=sys.stderr, flush=True),
        )  # fmt: skip
    finally:
        await asyncio.to_thread(service.close)


async def _replay(name: ServiceName, args: argparse.Namespace, workdir: Path) -> bool:
    import grpc  # noqa: PLC0415 - only the replay talks to the service from here

    case = make_case(args.seed, args.replay)
    print(f"case {case.index} ({case.kind}), cancel after: {case.cancel_after}")
    for message in case.messages:
        print(f"  -> {message.WhichOneof('request')}: {str(message)[:400]!r}")
    service = await asyncio.to_thread(Service.start, name, workdir / name)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.grpc_port}") as channel:
            outcome = await play(ext_proc_call(channel), case, args.deadline)
        for view in outcome.replies:
            print(f"  <- {view}"[:600])
        print(f"outcome: {outcome.kind} {outcome.detail}")
        print(f"alive: {service.alive()}, serving: {service.alive() and await service.serving()}")
        print(service.log_tail(20))
        return not outcome.failed and service.alive()
    finally:
        await asyncio.to_thread(service.close)


async def _main(args: argparse.Namespace, workdir: Path) -> int:
    names: list[ServiceName] = ["bbr", "epp"] if args.service == "both" else [args.service]
    ok = True
    for name in names:
        if args.replay is not None:
            ok = await _replay(name, args, workdir) and ok
            continue
        result = await _fuzz(name, args, workdir)
        text = summary(result, command_line(["python", "-m", "bench.fuzz_extproc",
                                             "--service", name, "--seed", str(args.seed),
                                             "--count", str(args.count)]))  # fmt: skip
        print(text)
        if args.output is not None:
            with args.output.open("a") as out:
                out.write(text + "\n")
        ok = ok and result.ok
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.workdir is not None:
        return asyncio.run(_main(args, args.workdir))
    with tempfile.TemporaryDirectory(prefix="igw-fuzz-") as tmp:
        return asyncio.run(_main(args, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
