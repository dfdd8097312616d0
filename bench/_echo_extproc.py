"""A trivial full-duplex ext_proc server: the baseline for the BBR's CPU per request.

It does the least any ext_proc must do when Envoy's request body mode is FULL_DUPLEX_STREAMED,
and nothing else (no parsing, no metrics, no tracing, no logging):

* the request headers are held until the body ends, then answered without a mutation, and the
  body is echoed back as `streamed_response` chunks of at most 62,000 bytes, the last one carrying
  `end_of_stream`;
* a header-only request (headers with `end_of_stream`) is answered at once;
* request trailers get an empty trailers response; when they end the body, the held headers and
  the body go out first, the last chunk without `end_of_stream` (Envoy's rule);
* chunks after the end of the body are ignored. Only the request side is configured in the
  benchmark, so response-side messages never arrive.

It serves on `grpc.aio` with uvloop, plaintext, on 127.0.0.1 `--port`, and stops on SIGTERM or
SIGINT. Run as `python -m bench._echo_extproc --port 9100`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import uvloop
from envoy.service.ext_proc.v3 import external_processor_pb2 as ext_proc_pb2

SERVICE = "envoy.service.ext_proc.v3.ExternalProcessor"
CHUNK_LIMIT = 62_000

# Never mutated after creation, so every stream can send the same objects.
_HEADERS_REPLY = ext_proc_pb2.ProcessingResponse(request_headers=ext_proc_pb2.HeadersResponse())
_TRAILERS_REPLY = ext_proc_pb2.ProcessingResponse(request_trailers=ext_proc_pb2.TrailersResponse())


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


async def serve(port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    method = grpc.stream_stream_rpc_method_handler(
        process,
        request_deserializer=ext_proc_pb2.ProcessingRequest.FromString,
        response_serializer=ext_proc_pb2.ProcessingResponse.SerializeToString,
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler(SERVICE, {"Process": method})]
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True, help="plaintext gRPC port")
    uvloop.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
