"""Fuzz cases: one ext_proc stream each, a pure function of (seed, index).

`make_case(seed, index)` seeds its own `random.Random` from both numbers, so any one case can be
rebuilt alone (`--replay INDEX`) and the run is the same on every machine. A case is the list of
`ProcessingRequest`s the client sends, in order, and optionally the point at which it cancels
the stream (after `cancel_after` messages). Kinds, by weight:

* `valid`: what Envoy sends, in one of the processing-mode combinations (request body
  FULL_DUPLEX_STREAMED, BUFFERED, STREAMED or NONE; response body NONE, STREAMED, BUFFERED or
  FULL_DUPLEX_STREAMED; with or without trailers), announced in `protocol_config`; the body split
  at random points, or at every byte, with empty chunks in between;
* `bad-body` / `bad-headers`: the same sequence around an adversarial body or header list
  (`payloads`);
* `order`: the valid sequence in an order Envoy never sends (body before headers, trailers first,
  response before request, duplicated headers, shuffled, sent twice);
* `eos`: duplicate end-of-stream chunks, and data after the end;
* `odd`: messages with no request set, unknown body modes, observability mode, strange metadata;
* `soup`: random messages of random kinds.

Any case may also be cancelled by the client after message k (every k is reachable).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as ext_proc_pb2

from bench._fuzz import payloads
from bench._fuzz.payloads import Header
from igw.common.envoy import BodyMode, ProcessingRequest

__all__ = ["Case", "make_case"]

_REQUEST_MODES = (BodyMode.FULL_DUPLEX_STREAMED,) * 5 + (
    BodyMode.BUFFERED, BodyMode.BUFFERED, BodyMode.STREAMED, BodyMode.NONE,
)  # fmt: skip
_RESPONSE_MODES = (
    BodyMode.NONE,
    BodyMode.STREAMED,
    BodyMode.BUFFERED,
    BodyMode.FULL_DUPLEX_STREAMED,
)
_SUBSET = ("envoy.lb.subset_hint", "x-gateway-destination-endpoint-subset")
_SUBSETS: tuple[object, ...] = ([], ["127.0.0.1:1"], "127.0.0.1", [5, None], {"a": 1}, ["::1"])


@dataclass(frozen=True, slots=True)
class Case:
    index: int
    kind: str
    messages: list[ProcessingRequest]
    cancel_after: int | None = None
    """Cancel the stream after sending this many messages (None: send all, then half-close)."""
    echoed_body: bytes | None = None
    """For a well-formed full-duplex request: the body the streamed replies must carry back."""


@dataclass(slots=True)
class _Shape:
    """A valid request's parameters, drawn once per case."""

    path: str
    request_mode: BodyMode
    response_mode: BodyMode
    header_only: bool
    trailers: bool
    response: bool


def _headers_map(headers: list[Header]) -> base_pb2.HeaderMap:
    values = [
        base_pb2.HeaderValue(key=key, raw_value=value)
        if raw
        else base_pb2.HeaderValue(key=key, value=value.decode(errors="replace"))
        for key, value, raw in headers
    ]
    return base_pb2.HeaderMap(headers=values)


def _request_headers(headers: list[Header], shape: _Shape, rng: random.Random) -> ProcessingRequest:
    message = ProcessingRequest(
        request_headers=ext_proc_pb2.HttpHeaders(
            headers=_headers_map(headers), end_of_stream=shape.header_only
        )
    )
    message.protocol_config.request_body_mode = shape.request_mode.value
    message.protocol_config.response_body_mode = shape.response_mode.value
    if rng.random() < 0.15:
        message.metadata_context.filter_metadata[_SUBSET[0]].update(
            {_SUBSET[1]: rng.choice(_SUBSETS)}
        )
    return message


def _body(data: bytes, eos: bool, *, response: bool = False) -> ProcessingRequest:
    body = ext_proc_pb2.HttpBody(body=data, end_of_stream=eos)
    return (
        ProcessingRequest(response_body=body) if response else ProcessingRequest(request_body=body)
    )


def _trailers(*, response: bool) -> ProcessingRequest:
    trailers = ext_proc_pb2.HttpTrailers(trailers=_headers_map([("x-t", b"1", True)]))
    if response:
        return ProcessingRequest(response_trailers=trailers)
    return ProcessingRequest(request_trailers=trailers)


def _split(rng: random.Random, body: bytes) -> list[bytes]:
    """The body in pieces: whole, at random points, or at every byte; maybe with empty ones."""
    how = rng.random()
    if how < 0.3 or not body:
        pieces = [body]
    elif how < 0.45 and len(body) <= 4000:
        pieces = [body[i : i + 1] for i in range(len(body))]
    else:
        cuts = sorted(rng.sample(range(1, len(body) + 1), min(len(body), rng.randint(1, 12))))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True) if a < b]
    if rng.random() < 0.1:
        pieces.insert(rng.randrange(len(pieces) + 1), b"")
    return pieces


def _body_messages(
    pieces: list[bytes], shape: _Shape, *, response: bool
) -> list[ProcessingRequest]:
    mode = shape.response_mode if response else shape.request_mode
    if mode is BodyMode.NONE:
        return []
    if mode in (BodyMode.BUFFERED, BodyMode.BUFFERED_PARTIAL):
        return [_body(b"".join(pieces), True, response=response)]
    last = len(pieces) - 1
    sent = [
        _body(p, i == last and not shape.trailers, response=response) for i, p in enumerate(pieces)
    ]
    if shape.trailers:
        sent.append(_trailers(response=response))
    return sent


def _response_side(rng: random.Random, shape: _Shape) -> list[ProcessingRequest]:
    sse = rng.random() < 0.5
    content_type = b"text/event-stream" if sse else b"application/json"
    status = rng.choice((b"200", b"200", b"500", b"429", b"abc"))
    header_eos = rng.random() < 0.1
    headers = [(":status", status, True), ("content-type", content_type, True)]
    sent = [
        ProcessingRequest(
            response_headers=ext_proc_pb2.HttpHeaders(
                headers=_headers_map(headers), end_of_stream=header_eos
            )
        )
    ]
    if header_eos:
        return sent
    if sse:
        body = b"".join(
            b'data: {"model":"m","choices":[{"text":"t"}]}\n\n' for _ in range(rng.randint(0, 20))
        )
        body += b'data: {"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\ndata: [DONE]\n\n'
    else:
        body = rng.choice((b'{"model":"m","usage":{"prompt_tokens":1}}', b"", b"\xff{", b"[]"))
    return sent + _body_messages(_split(rng, body), shape, response=True)


def _shape(rng: random.Random) -> _Shape:
    request_mode = rng.choice(_REQUEST_MODES)
    header_only = rng.random() < 0.1
    path = "/v1/models" if header_only and rng.random() < 0.5 else rng.choice(payloads.PATHS)
    return _Shape(
        path=path,
        request_mode=request_mode,
        response_mode=rng.choice(_RESPONSE_MODES),
        header_only=header_only,
        trailers=rng.random() < 0.25,
        response=rng.random() < 0.6,
    )


def _sequence(
    rng: random.Random, shape: _Shape, headers: list[Header], body: bytes
) -> list[ProcessingRequest]:
    sent = [_request_headers(headers, shape, rng)]
    if not shape.header_only:
        sent += _body_messages(_split(rng, body), shape, response=False)
    if shape.response:
        sent += _response_side(rng, shape)
    return sent


def _valid(rng: random.Random, index: int) -> Case:
    shape = _shape(rng)
    method = "GET" if shape.header_only else "POST"
    body = payloads.valid_body(rng, shape.path)
    sent = _sequence(rng, shape, payloads.request_headers(rng, shape.path, method=method), body)
    duplex = shape.request_mode is BodyMode.FULL_DUPLEX_STREAMED and not shape.header_only
    return Case(index, "valid", sent, echoed_body=body if duplex else None)


def _bad_body(rng: random.Random, index: int) -> Case:
    shape = _shape(rng)
    shape.header_only = False
    body = payloads.adversarial_body(rng, shape.path)
    sent = _sequence(rng, shape, payloads.request_headers(rng, shape.path), body)
    return Case(index, "bad-body", sent)


def _bad_headers(rng: random.Random, index: int) -> Case:
    shape = _shape(rng)
    headers = payloads.adversarial_headers(rng, shape.path)
    return Case(index, "bad-headers", _sequence(rng, shape, headers, payloads.valid_body(rng, "")))


def _reordered(rng: random.Random, index: int) -> Case:
    sent = _valid(rng, index).messages
    kinds = [m.WhichOneof("request") or "" for m in sent]
    how = rng.randrange(6)
    if how == 0:
        rng.shuffle(sent)
    elif how == 1:
        sent.reverse()
    elif how == 2:  # the request's headers after everything else
        sent = sent[1:] + sent[:1]
    elif how == 3:  # trailers first, then the rest
        sent = [_trailers(response=rng.random() < 0.5), *sent]
    elif how == 4:  # the response side before the request side
        cut = next((i for i, kind in enumerate(kinds) if kind.startswith("response")), len(sent))
        sent = sent[cut:] + sent[:cut]
    else:  # duplicate request headers, or the whole sequence twice
        sent = [sent[0], *sent] if rng.random() < 0.5 else sent + sent
    return Case(index, "order", sent)


def _eos(rng: random.Random, index: int) -> Case:
    shape = _shape(rng)
    shape.header_only = False
    headers = payloads.request_headers(rng, shape.path)
    body = payloads.valid_body(rng, shape.path)
    sent = [_request_headers(headers, shape, rng)]
    sent += [_body(piece, rng.random() < 0.6) for piece in _split(rng, body)]
    sent += [_body(rng.choice((b"", b"x", body)), True) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.5:
        sent.append(_trailers(response=False))
    return Case(index, "eos", sent)


def _odd(rng: random.Random, index: int) -> Case:
    sent = _valid(rng, index).messages
    how = rng.randrange(4)
    if how == 0:
        sent.insert(rng.randrange(len(sent) + 1), ProcessingRequest())
    elif how == 1:  # body modes no Envoy has
        sent[0].protocol_config.request_body_mode = rng.choice((5, 99, -1))
        sent[0].protocol_config.response_body_mode = rng.choice((0, 7))
    elif how == 2:
        for message in sent:
            message.observability_mode = True
    else:
        sent[0].metadata_context.filter_metadata["envoy.lb"].update({"x": [None, {"y": []}]})
        sent[0].attributes["envoy.filters.http.ext_proc"].update({"request.path": 5})
    return Case(index, "odd", sent)


def _soup(rng: random.Random, index: int) -> Case:
    makers: list[Callable[[], ProcessingRequest]] = [
        lambda: _request_headers(
            payloads.request_headers(rng, "/v1/completions"), _shape(rng), rng
        ),
        lambda: _body(payloads.valid_body(rng, "")[: rng.randrange(40)], rng.random() < 0.5),
        lambda: _trailers(response=False),
        lambda: _response_side(rng, _shape(rng))[0],
        lambda: _body(b"data: x\n\n", rng.random() < 0.5, response=True),
        lambda: _trailers(response=True),
    ]
    return Case(index, "soup", [rng.choice(makers)() for _ in range(rng.randint(1, 12))])


_KINDS: tuple[tuple[Callable[[random.Random, int], Case], int], ...] = (
    (_valid, 30), (_bad_body, 20), (_bad_headers, 12), (_reordered, 14), (_eos, 10), (_odd, 7),
    (_soup, 7),
)  # fmt: skip


def make_case(seed: int, index: int) -> Case:
    """Case `index` of the run seeded `seed` (see the module docstring)."""
    rng = random.Random(f"{seed}:{index}")  # noqa: S311 - reproducible cases, not secrets
    makers = [maker for maker, _weight in _KINDS]
    maker = rng.choices(makers, [weight for _maker, weight in _KINDS])[0]
    case = maker(rng, index)
    if rng.random() < 0.15:
        cancel_after = rng.randint(0, len(case.messages))
        return Case(case.index, case.kind, case.messages, cancel_after, None)
    return case
