"""A trivial full-duplex ext_proc server: the baseline for the BBR's CPU per request.

It does the least any ext_proc must do when Envoy's request body mode is FULL_DUPLEX_STREAMED,
and nothing else (no parsing, no metrics, no tracing, no logging):

* the request headers are held until the body ends, then answered without a mutation, and the
  body is echoed back as `streamed_response` chunks of at most 62,000 bytes, the last one carrying
  `end_of_stream`;
* a header-only request (headers with `end_of_stream`) is answered at once;
* request trailers get an empty trailers response; when they end the body, the held headers and
  the body go out first, the last chunk without `end_of_stream` (Envoy's rule);
* chunks after the end of the body are ignored;
* response headers, when a listener sends them (the latency floor that pays the EPP's lean
  response mode's message: `bench._epp_stack`'s `echo_chain_lean`), are answered without a
  mutation. No listener sends response bodies or trailers to it.

It serves on `grpc.aio` with uvloop, plaintext, on 127.0.0.1 `--port`, and stops on SIGTERM or
SIGINT. Run as `python -m bench._echo_extproc --port 9100`. The other flags select the serving
variants `bench.grpc_server` compares (plain asyncio, server options, the `read()`/`write()`
stream API, the synchronous server on a thread pool); the defaults are what the other
benchmarks measure.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import signal
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import grpc
import uvloop
from envoy.service.ext_proc.v3 import external_processor_pb2 as ext_proc_pb2

SERVICE = "envoy.service.ext_proc.v3.ExternalProcessor"
CHUNK_LIMIT = 62_000

# Never mutated after creation, so every stream can send the same objects.
_HEADERS_REPLY = ext_proc_pb2.ProcessingResponse(request_headers=ext_proc_pb2.HeadersResponse())
_TRAILERS_REPLY = ext_proc_pb2.ProcessingResponse(request_trailers=ext_proc_pb2.TrailersResponse())
_RESPONSE_HEADERS_REPLY = ext_proc_pb2.ProcessingResponse(
    response_headers=ext_proc_pb2.HeadersResponse()
)


def _headers_and_body(chunks: list[bytes], *, end_of_stream: bool) -> Iterator[Any]:
    """The held headers reply, then the body echoed in chunks of at most `CHUNK_LIMIT` bytes."""
    yield _HEADERS_REPLY
    body = b"".join(chunks)
    last = max(len(body) - 1, 0) // CHUNK_LIMIT * CHUNK_LIMIT
    for start in range(0, last + 1, CHUNK_LIMIT):
        streamed = ext_proc_pb2.StreamedBodyResponse(
            body=body[start : start + CHUNK_LIMIT], end_of_stream=end_of_stream and start == last
        )
        mutation = ext_proc_pb2.BodyMutation(streamed_response=streamed)
        common = ext_proc_pb2.CommonResponse(body_mutation=mutation)
        yield ext_proc_pb2.ProcessingResponse(
            request_body=ext_proc_pb2.BodyResponse(response=common)
        )


async def process(
    requests: AsyncIterator[Any], _context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[Any]:
    """One ext_proc stream (one HTTP request)."""
    chunks: list[bytes] = []
    answered = False
    async for message in requests:
        kind = message.WhichOneof("request")
        if kind == "request_headers" and message.request_headers.end_of_stream:
            answered = True
            yield _HEADERS_REPLY
        elif kind == "request_body" and not answered:
            body = message.request_body
            chunks.append(body.body)
            if body.end_of_stream:
                answered = True
                for reply in _headers_and_body(chunks, end_of_stream=True):
                    yield reply
        elif kind == "request_trailers":
            if not answered:
                answered = True
                for reply in _headers_and_body(chunks, end_of_stream=False):
                    yield reply
            yield _TRAILERS_REPLY
        elif kind == "response_headers":
            yield _RESPONSE_HEADERS_REPLY


async def process_read_write(
    _requests: object, context: grpc.aio.ServicerContext[Any, Any]
) -> None:
    """`process` on the explicit `context.read()` / `context.write()` API instead of an async
    iterator and generator (a stream-handling variant for `bench.grpc_server`)."""
    chunks: list[bytes] = []
    answered = False
    while (message := await context.read()) is not grpc.aio.EOF:
        kind = message.WhichOneof("request")
        if kind == "request_headers" and message.request_headers.end_of_stream:
            answered = True
            await context.write(_HEADERS_REPLY)
        elif kind == "request_body" and not answered:
            chunks.append(message.request_body.body)
            if message.request_body.end_of_stream:
                answered = True
                for reply in _headers_and_body(chunks, end_of_stream=True):
                    await context.write(reply)
        elif kind == "request_trailers":
            if not answered:
                answered = True
                for reply in _headers_and_body(chunks, end_of_stream=False):
                    await context.write(reply)
            await context.write(_TRAILERS_REPLY)
        elif kind == "response_headers":
            await context.write(_RESPONSE_HEADERS_REPLY)


def process_sync(requests: Iterator[Any], _context: grpc.ServicerContext) -> Iterator[Any]:
    """`process` for the synchronous server (one thread per stream)."""
    chunks: list[bytes] = []
    answered = False
    for message in requests:
        kind = message.WhichOneof("request")
        if kind == "request_headers" and message.request_headers.end_of_stream:
            answered = True
            yield _HEADERS_REPLY
        elif kind == "request_body" and not answered:
            chunks.append(message.request_body.body)
            if message.request_body.end_of_stream:
                answered = True
                yield from _headers_and_body(chunks, end_of_stream=True)
        elif kind == "request_trailers":
            if not answered:
                answered = True
                yield from _headers_and_body(chunks, end_of_stream=False)
            yield _TRAILERS_REPLY
        elif kind == "response_headers":
            yield _RESPONSE_HEADERS_REPLY


def _handler(behaviour: Any) -> grpc.GenericRpcHandler:
    method = grpc.stream_stream_rpc_method_handler(
        behaviour,
        request_deserializer=ext_proc_pb2.ProcessingRequest.FromString,
        response_serializer=ext_proc_pb2.ProcessingResponse.SerializeToString,
    )
    return grpc.method_handlers_generic_handler(SERVICE, {"Process": method})


async def serve(
    port: int, *, options: Sequence[tuple[str, Any]] = (), read_write: bool = False
) -> None:
    """Serve until SIGTERM or SIGINT."""
    server = grpc.aio.server(options=options)
    server.add_generic_rpc_handlers([_handler(process_read_write if read_write else process)])
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1.0)


def serve_sync(port: int, *, threads: int, options: Sequence[tuple[str, Any]] = ()) -> None:
    """The synchronous server on a thread pool (a variant for `bench.grpc_server`)."""
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=threads), options=options
    )
    server.add_generic_rpc_handlers([_handler(process_sync)])
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    stop.wait()
    server.stop(1.0).wait()


def _option(text: str) -> tuple[str, Any]:
    name, _, value = text.partition("=")
    return name, int(value) if value.lstrip("-").isdigit() else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True, help="plaintext gRPC port")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--sync-threads", type=int, default=0, help="the sync server, N threads")
    parser.add_argument("--read-write", action="store_true", help="context.read()/write() API")
    parser.add_argument("--option", type=_option, action="append", default=[], help="NAME=VALUE")
    args = parser.parse_args()
    if args.sync_threads:
        serve_sync(args.port, threads=args.sync_threads, options=args.option)
        return
    run = uvloop.run if args.loop == "uvloop" else asyncio.run
    run(serve(args.port, options=args.option, read_write=args.read_write))


if __name__ == "__main__":
    main()
