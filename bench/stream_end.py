"""Native memory per ext_proc stream, by how the stream ends (issue 13 item 5).

    python -m bench.stream_end [--streams 30000] [--warmup 5000]

grpc.aio leaks native memory for a server stream its client cancels while the handler awaits
the next message (grpc/grpc#43360, open in grpcio 1.85). Envoy ends every ext_proc stream that way
by default; with `envoy.reloadable_features.ext_proc_graceful_grpc_close` it half-closes instead
(`igw.common.testing.envoy_config.GRACEFUL_EXT_PROC_CLOSE`). This measures what each ending costs
the real services: for each service and ending, a fresh process (`bench._fuzz.service`) takes
`--warmup` streams, then `--streams` more, eight at a time, each a valid request (headers, then a
JSON body) answered as Envoy would see it; the RSS growth over the measured streams, per stream,
is the figure. Endings:

* `half-close`: the client half-closes after the request's replies (Envoy with the runtime key);
* `reset`: the client cancels the stream instead (Envoy's default);
* `server-first`: the processor ends the stream itself (an immediate 400 for a body that is not
  JSON, as for every error answer and, in the EPP's lean mode, for a skipped response body);
* `error`: the processor ends the stream with a gRPC error status (a protocol violation: request
  headers twice), as Envoy then applies the filter's failure mode. Before the servicer set the
  status and returned instead of calling `context.abort()`, this cost the BBR about 600 bytes a
  stream (40,000 streams: RSS 101 -> 117 MiB, against 90.2 -> 90.5 MiB after).

Writes a Markdown table to stdout, and to `--output` if given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import grpc

from bench._fuzz.service import Service, ServiceName
from bench._paths import command_line
from igw.common.envoy import BodyMode
from igw.common.testing.messages import ext_proc_call, request_body, request_headers

__all__ = ["main"]

ENDINGS = ("half-close", "reset", "server-first", "error")
_HEADERS = ((":method", "POST"), (":path", "/v1/chat/completions"), ("content-type", "json"))
_BODY = b'{"model": "m", "messages": [{"role": "user", "content": "hello"}]}'
_MODES = (BodyMode.FULL_DUPLEX_STREAMED, BodyMode.NONE)


async def _one(channel: grpc.aio.Channel, ending: str) -> None:
    call = ext_proc_call(channel)()
    await call.write(request_headers(_HEADERS, modes=_MODES))
    if ending == "error":
        await call.write(request_headers(_HEADERS))
        with contextlib.suppress(grpc.aio.AioRpcError):
            while await call.read() is not grpc.aio.EOF:
                pass
        return
    body = b"{not json" if ending == "server-first" else _BODY
    await call.write(request_body(body, end_of_stream=True))
    replies = 1 if ending == "server-first" else 2  # an immediate answer, or headers + body
    for _ in range(replies):
        await call.read()
    if ending == "reset":
        call.cancel()
        return
    if ending == "half-close":
        await call.done_writing()
    while await call.read() is not grpc.aio.EOF:
        pass


async def _streams(service: Service, ending: str, count: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.grpc_port}") as channel:
        gate = asyncio.Semaphore(8)

        async def bounded() -> None:
            async with gate:
                await _one(channel, ending)

        for start in range(0, count, 1000):
            await asyncio.gather(*(bounded() for _ in range(min(1000, count - start))))


async def _growth(name: ServiceName, ending: str, args: argparse.Namespace) -> float:
    """Bytes of RSS per stream over the measured streams, in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="igw-stream-end-") as workdir:
        service = Service.start(name, Path(workdir))
        try:
            await _streams(service, ending, args.warmup)
            before = service.rss_kib()
            await _streams(service, ending, args.streams)
            growth: float = (service.rss_kib() - before) * 1024 / args.streams
            return growth
        finally:
            service.close()


async def _main(args: argparse.Namespace) -> str:
    lines = [
        "# Native memory per ext_proc stream, by how it ends",
        "",
        (
            f"`{command_line(sys.argv)}`: {args.warmup:,} streams of warm-up, then"
            f" {args.streams:,} measured, per service and ending, each in a fresh process."
        ),
        "",
        "| service | " + " | ".join(f"{e} (bytes/stream)" for e in ENDINGS) + " |",
        "|---|" + "---:|" * len(ENDINGS),
    ]
    for name in ("bbr", "epp"):
        growths = [await _growth(name, ending, args) for ending in ENDINGS]
        lines.append(f"| {name} | " + " | ".join(f"{g:,.0f}" for g in growths) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stream_end", description=__doc__)
    parser.add_argument("--streams", type=int, default=30_000)
    parser.add_argument("--warmup", type=int, default=5_000)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    report = asyncio.run(_main(args))
    print(report, end="")
    if args.output:
        args.output.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
