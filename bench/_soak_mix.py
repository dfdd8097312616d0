"""The soak's request mix: which requests, in which order, and what each one's answer must be.

Every request is one `Kind` drawn by weight from `KINDS` with a seeded `random.Random`, so a seed
gives the same sequence of requests (the order the closed loop's clients take them in). The mix:

* chat completions and completions, streamed and not, for the base model and for the LoRA
  adapter (the BBR names its base model; the adapter's requests go to sim-2 only);
* prompts from `FAMILIES` families, each a long shared prefix (a system prompt, a document) and a
  short unique tail, as prefix-aware scheduling sees them in production;
* `bad-body`: bodies the gateway must refuse with a 400 (truncated JSON, no messages, messages
  of the wrong type, a negative max_tokens that only the model server refuses);
* `disconnect`: a streamed chat completion the client abandons after its first event.

`expected(kind)` is the outcome a kind is induced to have; any other outcome is a failure.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass

from igw.e2e import pool

__all__ = ["FAMILIES", "KINDS", "Kind", "Planned", "body", "plan"]

FAMILIES = 4
"""Prompt families sharing a prefix."""

_TOPICS = ("a gateway's routing rules", "a kitchen's food-safety log", "a payments API",
           "a cluster's upgrade runbook")  # fmt: skip
_WORDS = ("latency", "queue", "adapter", "token", "prefix", "cache", "pod", "header", "stream",
          "budget", "replica", "timeout", "metric", "flow", "tenant", "model")  # fmt: skip
_BAD_BODIES = (
    b'{"model": "meta-llama/Llama-3.1-8B-Instruct", "messages": [{"role": "us',
    json.dumps({"model": pool.BASE_MODEL}).encode(),
    json.dumps({"model": pool.BASE_MODEL, "messages": "not a list"}).encode(),
    json.dumps(
        {
            "model": pool.BASE_MODEL,
            "max_tokens": -5,
            "messages": [{"role": "user", "content": "hi"}],
        }
    ).encode(),
)


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    path: str
    """/v1/chat/completions or /v1/completions."""
    stream: bool
    model: str
    weight: int
    expect: str = "2xx"
    """The outcome this kind is induced to have: 2xx, 4xx or disconnected."""


_CHAT, _COMPLETIONS = "/v1/chat/completions", "/v1/completions"
_BASE, _ADAPTER = pool.BASE_MODEL, pool.ADAPTER
KINDS = (
    Kind("chat", _CHAT, False, _BASE, 22),
    Kind("chat-stream", _CHAT, True, _BASE, 20),
    Kind("completion", _COMPLETIONS, False, _BASE, 12),
    Kind("completion-stream", _COMPLETIONS, True, _BASE, 10),
    Kind("adapter-chat", _CHAT, False, _ADAPTER, 7),
    Kind("adapter-chat-stream", _CHAT, True, _ADAPTER, 6),
    Kind("adapter-completion", _COMPLETIONS, False, _ADAPTER, 5),
    Kind("adapter-completion-stream", _COMPLETIONS, True, _ADAPTER, 5),
    Kind("bad-body", _CHAT, False, _BASE, 7, expect="4xx"),
    Kind("disconnect", _CHAT, True, _BASE, 6, expect="disconnected"),
)


@dataclass(frozen=True, slots=True)
class Planned:
    """One request to send: its kind and its body."""

    kind: Kind
    body: bytes


def _prefix(family: int) -> str:
    topic = _TOPICS[family % len(_TOPICS)]
    rng = random.Random(family)  # noqa: S311 - a seeded benchmark
    document = " ".join(rng.choice(_WORDS) for _ in range(300))
    return f"You answer questions about {topic}. Reference document {family}: {document}. "


_PREFIXES = tuple(map(_prefix, range(FAMILIES)))


def body(kind: Kind, rng: random.Random) -> bytes:
    """A request body of `kind`: a family's prefix, a unique tail, a few tokens to answer."""
    if kind.expect == "4xx":
        return rng.choice(_BAD_BODIES)
    prefix = _PREFIXES[rng.randrange(FAMILIES)]
    tail = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(5, 40)))
    request: dict[str, object] = {"model": kind.model, "max_tokens": rng.randint(4, 24)}
    if kind.path == _CHAT:
        request["messages"] = [
            {"role": "system", "content": prefix},
            {"role": "user", "content": f"Question: {tail}?"},
        ]
    else:
        request["prompt"] = f"{prefix}Question: {tail}?\nAnswer:"
    if kind.stream:
        request["stream"] = True
    return json.dumps(request).encode()


def plan(seed: int) -> Iterator[Planned]:
    """The endless, seeded sequence of requests (module docstring)."""
    rng = random.Random(seed)  # noqa: S311 - a seeded benchmark
    weights = [k.weight for k in KINDS]
    while True:
        kind = rng.choices(KINDS, weights)[0]
        yield Planned(kind, body(kind, rng))
