"""What the fuzzer puts inside messages: request bodies and header lists, good and adversarial.

Every generator takes a `random.Random` and returns plain values (bytes, header triples), so a
case is a pure function of its seed and index. Bodies are the OpenAI shapes the services parse
(chat, completions, embeddings) with one field at a time broken, or not JSON at all: wrong types
(`"model": 5`, `"messages": {}`, `"prompt": null`), numbers no float holds (`1e400`, a 5,000-digit
integer), invalid UTF-8, lone surrogates, nesting deeper than any parser's recursion limit,
truncated documents and empty bodies. Headers are triples `(key, value, raw)`: `raw` puts the
value in `raw_value` as Envoy does, else in the deprecated `value` string field.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

__all__ = ["Header", "adversarial_body", "adversarial_headers", "request_headers", "valid_body"]

Header = tuple[str, bytes, bool]
"""(key, value bytes, in raw_value): False puts the value in the `value` string field."""

PATHS = (
    "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses",
    "/v1/models", "/v1/models/m", "/v1/conversations", "/", "",
)  # fmt: skip
MODELS = ("m", "base", "lora-a", "", "ü-model", "a" * 300)
_WEIRD_VALUES: tuple[object, ...] = (
    5, -1, 0, 1.5, None, True, False, [], {}, [1, 2], {"a": 1}, "", " ", "x" * 10_000, [[[]]],
    "\u0000", "\ud800", "ü", 2**64, -(2**63),
)  # fmt: skip
_BODY_FIELDS = ("model", "messages", "prompt", "input", "stream", "stream_options", "max_tokens")


def valid_body(rng: random.Random, path: str) -> bytes:
    """A well-formed body for `path`'s API (completions for any other path)."""
    model = rng.choice(MODELS[:3])
    size = rng.choice((1, 10, 100, 2000))
    text = "".join(rng.choice("abcdefgh üé中") for _ in range(size))
    doc: dict[str, object] = {"model": model}
    if path.endswith("/chat/completions"):
        doc["messages"] = [{"role": "user", "content": text}]
    elif path.endswith(("/embeddings", "/responses")):
        doc["input"] = text
    else:
        doc["prompt"] = text
    if rng.random() < 0.3:
        doc["stream"] = True
    return json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode()


def _wrong_type(rng: random.Random, path: str) -> bytes:
    doc = json.loads(valid_body(rng, path))
    for _ in range(rng.randint(1, 3)):
        doc[rng.choice(_BODY_FIELDS)] = rng.choice(_WEIRD_VALUES)
    return json.dumps(doc).encode()


def _huge_numbers(rng: random.Random, path: str) -> bytes:
    number = rng.choice(("1e400", "-1e400", "1e-400", "9" * 5000, "-0", "1E+99999", "0.0e0"))
    field = rng.choice(("model", "max_tokens", "temperature", "prompt", "n"))
    doc = valid_body(rng, path).decode()
    return doc[:-1].encode() + f', "{field}": {number}}}'.encode()


def _invalid_utf8(rng: random.Random, path: str) -> bytes:
    body = bytearray(valid_body(rng, path))
    junk = rng.choice((b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80\x80"))
    where = rng.randrange(len(body) + 1)
    return bytes(body[:where] + junk + body[where:])


def _escapes(rng: random.Random, _path: str) -> bytes:
    model = rng.choice((r"\ud800", r"\udfff\ud800", r"\u0000", r"\uZZZZ", "\\", r"\"", r"\/"))
    return b'{"model": "' + model.encode() + b'", "prompt": "p"}'


def _deep(rng: random.Random, _path: str) -> bytes:
    depth = rng.choice((100, 1000, 5000, 100_000))
    inner = (b"[" * depth) + (b"]" * depth if rng.random() < 0.7 else b"")
    if rng.random() < 0.5:
        return b'{"model": "m", "prompt": ' + inner + b"}"
    return b'{"a":' * depth + b"1" + b"}" * depth


def _not_an_object(rng: random.Random, _path: str) -> bytes:
    return rng.choice(
        (b"", b" ", b"null", b"[]", b"5", b'"model"', b"{", b'{"model": "m"', b"{}", b"\x00",
         b'{"model": "m", "prompt": "p"} trailing', b"\xef\xbb\xbf{}", b"NaN", b"Infinity",
         b'{"model": "m", "model": 5, "prompt": "p"}', b'{"model": NaN, "prompt": "p"}',
         bytes(rng.randrange(256) for _ in range(rng.randint(1, 300))))
    )  # fmt: skip


def _huge(rng: random.Random, path: str) -> bytes:
    size = rng.choice((70_000, 200_000, 1_500_000))
    field = "messages" if path.endswith("/chat/completions") else "prompt"
    if field == "messages":
        return json.dumps({"model": "m", field: [{"role": "user", "content": "x" * size}]}).encode()
    return json.dumps({"model": "m", field: "x" * size}).encode()


_BODY_BREAKERS: tuple[Callable[[random.Random, str], bytes], ...] = (
    _wrong_type, _wrong_type, _huge_numbers, _invalid_utf8, _escapes, _deep, _not_an_object,
    _not_an_object, _huge,
)  # fmt: skip


def adversarial_body(rng: random.Random, path: str) -> bytes:
    """A body with one kind of damage (see the module docstring)."""
    return rng.choice(_BODY_BREAKERS)(rng, path)


def request_headers(rng: random.Random, path: str, *, method: str = "POST") -> list[Header]:
    """The headers Envoy sends for a normal request, with some of the EPP's control headers."""
    headers: list[Header] = [
        (":method", method.encode(), True),
        (":path", path.encode(), True),
        (":authority", b"gateway", True),
        (":scheme", b"http", True),
        ("content-type", b"application/json", True),
        ("x-request-id", f"req-{rng.randrange(10**9)}".encode(), True),
    ]
    extra = (
        ("x-gateway-inference-objective", rng.choice((b"critical", b"", b"nope"))),
        ("x-gateway-inference-fairness-id", rng.choice((b"tenant-a", b"", b"t" * 500))),
        ("x-gateway-model-name-rewrite", rng.choice((b"t", b"", b"\xc3\xa9"))),
        ("x-gateway-destination-endpoint", b"127.0.0.1:1"),
        ("traceparent", rng.choice((b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01", b"junk"))),
    )
    headers.extend((key, value, True) for key, value in extra if rng.random() < 0.2)
    return headers


def adversarial_headers(rng: random.Random, path: str) -> list[Header]:
    """Headers an HTTP parser would refuse: huge, many, non-ASCII, duplicated or missing."""
    headers = request_headers(rng, path, method=rng.choice(("POST", "GET", "PUT", "", "X" * 99)))
    damage = rng.randrange(7)
    if damage == 0:  # one huge value
        key = rng.choice((":path", "x-big", "x-gateway-inference-objective", "x-request-id"))
        headers.append((key, b"v" * rng.choice((70_000, 1_000_000)), True))
    elif damage == 1:  # very many headers
        headers.extend((f"x-h-{i}", b"v", True) for i in range(rng.choice((200, 5000))))
    elif damage == 2:  # non-ASCII and invalid UTF-8 keys and values
        headers.append((rng.choice(("x-ü", "x-\u0000", "", " ", "X-Upper")), b"\xff\xfe", True))
        headers.append(("x-gateway-model-name-rewrite", "é".encode(), rng.random() < 0.5))
    elif damage == 3:  # values in the deprecated `value` field instead of `raw_value`
        headers = [(key, value, False) for key, value, _raw in headers]
    elif damage == 4:  # no :path and/or :method
        drop = rng.choice(((":path",), (":method",), (":path", ":method")))
        headers = [header for header in headers if header[0] not in drop]
    elif damage == 5:  # every header twice, with different values
        headers = headers + [(key, value + b"-2", raw) for key, value, raw in headers]
    else:  # a non-UTF-8 :path
        headers.append((":path", b"/v1/\xff\xfe/completions", True))
    return headers
