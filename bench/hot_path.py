"""Our own Python per request, in process: the EPP's and the BBR's request side without gRPC.

The end-to-end ratios (`bench.epp_cost`, `bench.bbr_cpu`) carry every other process on the
machine in their noise, and the gRPC server's own cost (`bench.grpc_server`: ~120 CPU-µs per
message) in their floor. This measures only what is ours, so that a change to the hot path can
be judged on a busy machine: one request as Envoy sends it (a headers message with a dozen
headers, then the 2,048-byte chat body with `end_of_stream`) is deserialised, sequenced by the
serving core (`igw.common.extproc.Stream`), decided by the service's exchange, and every reply
serialised, exactly as the servicer does between gRPC reads and writes.

Exchanges: `pass_through` (the serving core alone: the floor), `bbr` (the BBR's default
plugins, as `igw-bbr --streaming` builds them), `epp` (the EPP's default config over 8 endpoints
with fresh metrics, the test builders' director: scheduler, prefix producer, metrics) and
`epp_learned` (the same with `--config-profile learned-latency`). Figure:
CPU time (`time.process_time`) per request, the best of `--repeats` runs of `--requests` each
(the least disturbed), after a warm-up; and each exchange's cost over `pass_through`.
Run `python -m bench.hot_path`; it prints a Markdown table and writes nothing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import uvloop

from bench import _load
from bench._epp_common import table
from igw.bbr.server import BbrOptions, BbrService
from igw.common.envoy import BodyMode, ProcessingRequest
from igw.common.extproc import Exchange, PassThroughExchange, Stream, StreamInfo
from igw.common.testing import messages
from igw.epp.config import PROFILES
from igw.epp.testing.builders import endpoints
from igw.epp.testing.requestpath import build_director, build_exchanges

Factory = Callable[[StreamInfo], Exchange]

_HEADERS = {
    ":method": "POST", ":path": "/v1/chat/completions", ":authority": "127.0.0.1:8080",
    ":scheme": "http", "content-type": "application/json", "content-length": "2048",
    "user-agent": "Python/3.11 aiohttp/3.14.5", "accept": "*/*",
    "accept-encoding": "gzip, deflate", "x-forwarded-proto": "http",
    "x-request-id": "0f5c8e0e-2a4b-4c1e-9d0a-1b2c3d4e5f60",
    "x-envoy-expected-rq-timeout-ms": "15000",
}  # fmt: skip


def _wire() -> tuple[bytes, bytes]:
    """The two messages of one request as gRPC hands them over: serialised."""
    body = _load.chat_body(2048)
    headers = messages.request_headers(_HEADERS, end_of_stream=False)
    return headers.SerializeToString(), messages.request_body(
        body, end_of_stream=True
    ).SerializeToString()


def _factories() -> dict[str, Factory]:
    pass_through = PassThroughExchange()
    bbr = BbrService(BbrOptions(kubernetes="off", tracing=False, metrics_endpoint_auth=False))
    return {
        "pass_through": lambda _info: pass_through,
        "bbr": bbr.router.exchange,
        "epp": build_exchanges(build_director(endpoints(8))),
        "epp_learned": build_exchanges(
            build_director(endpoints(8), config=PROFILES["learned-latency"])
        ),
    }


async def _requests(factory: Factory, wire: tuple[bytes, bytes], count: int) -> float:
    """CPU seconds for `count` requests through `factory`'s exchanges."""
    duplex = BodyMode.FULL_DUPLEX_STREAMED
    start = time.process_time()
    for _ in range(count):
        stream = Stream(factory(StreamInfo(span=None)), duplex, BodyMode.NONE)
        for raw in wire:
            for reply in await stream.handle(ProcessingRequest.FromString(raw)):
                reply.SerializeToString()
        stream.exchange.close(stream.completed)
    return time.process_time() - start


async def _measure(requests: int, repeats: int) -> dict[str, float]:
    """Exchange -> best CPU-µs per request."""
    wire, best = _wire(), {}
    for name, factory in _factories().items():
        await _requests(factory, wire, max(requests // 10, 100))
        runs = [await _requests(factory, wire, requests) for _ in range(repeats)]
        best[name] = min(runs) / requests * 1e6
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hot_path", description=__doc__)
    parser.add_argument("--requests", type=int, default=3000, help="requests per run")
    parser.add_argument("--repeats", type=int, default=5, help="runs per exchange; best kept")
    args = parser.parse_args(argv)
    best = uvloop.run(_measure(args.requests, args.repeats))
    floor = best["pass_through"]
    rows = [[name, f"{us:.1f}", f"{us - floor:+.1f}"] for name, us in best.items()]
    print(table(["exchange", "CPU-µs/request", "over pass_through"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
