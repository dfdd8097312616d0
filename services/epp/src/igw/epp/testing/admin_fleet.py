"""Test support for the admin API (`ListEndpoints`, `Explain`): three pods with different load.

    pod-a  waiting 6, running 4, KV 70%, scraped 5 s ago (stale at the 2 s threshold)
    pod-b  waiting 3, running 2, KV 40%, adapter food-review-1 loaded, scraped 0.5 s ago
    pod-c  waiting 0, running 1, KV 10%, scraped 0.1 s ago: the least loaded

With the default weights (queue 2, KV 2, prefix 3) and no prefix match the totals are
A = 2x0 + 2x0.3 = 0.6, B = 2x0.5 + 2x0.6 = 2.2, C = 2x1 + 2x0.9 = 3.8.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from igw.epp.config import EppConfig
from igw.epp.endpoints import ENGINE_TYPE_LABEL, EndpointState, InferenceRequest
from igw.epp.framework import CycleState, ProfileResult, SchedulingResult
from igw.epp.parsers import OpenAIParser
from igw.epp.scheduling.plugins.approx_prefix_cache_producer import ApproxPrefixCacheProducer
from igw.epp.testing.builders import NOW, endpoint

__all__ = [
    "CHAT",
    "MODEL",
    "SYSTEM_PROMPT",
    "StaticSource",
    "chat_body",
    "fleet",
    "prefix_producer",
    "seed_prefix",
]

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
CHAT = "/v1/chat/completions"
SYSTEM_PROMPT = "You are a meticulous assistant for a food-review site. " * 40
"""About 2,200 characters: over 30 prefix blocks of 64 characters."""


def _pod(name: str, age_s: float, **metrics: object) -> EndpointState:
    state = endpoint(f"{name}-rank-0", updated_at=NOW - age_s, **metrics)  # type: ignore[arg-type]  # keyword pass-through
    labels = {ENGINE_TYPE_LABEL: "vllm", "app": name}
    return dataclasses.replace(
        state, endpoint=dataclasses.replace(state.endpoint, pod=name, labels=labels)
    )


def fleet() -> list[EndpointState]:
    return [
        _pod("pod-a", 5.0, address="10.0.0.1", waiting=6, running=4, kv=0.7),
        _pod("pod-b", 0.5, address="10.0.0.2", waiting=3, running=2, kv=0.4,
             active=["food-review-1"], max_lora=4),
        _pod("pod-c", 0.1, address="10.0.0.3", waiting=0, running=1, kv=0.1),
    ]  # fmt: skip


@dataclass
class StaticSource:
    """An `EndpointSource` over a list a test may change."""

    states: list[EndpointState] = field(default_factory=fleet)

    def endpoints(self) -> Sequence[EndpointState]:
        return self.states


def chat_body(question: str, *, model: str = MODEL) -> bytes:
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": question},
    ]
    return json.dumps({"model": model, "messages": messages}).encode()


def prefix_producer(config: EppConfig) -> ApproxPrefixCacheProducer:
    producer = config.plugins["approx-prefix-cache-producer"]
    if not isinstance(producer, ApproxPrefixCacheProducer):
        raise TypeError("the config's approx-prefix-cache-producer is not the built-in one")
    return producer


def seed_prefix(config: EppConfig, source: StaticSource, body: bytes, target: str) -> None:
    """Records `body`'s prefix as cached on `target`, as PreRequest does after routing there."""
    parsed = OpenAIParser().parse(CHAT, body)
    request = InferenceRequest("seed", parsed.model, {}, prompt_text=parsed.prompt_text)
    producer = prefix_producer(config)
    state = CycleState()
    producer.prepare_data(request, state, source.states)
    [chosen] = [s for s in source.states if s.endpoint.name == target]
    result = SchedulingResult({"default": ProfileResult((chosen,))}, "default")
    producer.pre_request(request, state, result)
