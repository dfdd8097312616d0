"""Builders for scheduling tests (STYLE §26): endpoints with metrics, requests, a settable clock."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping

from igw.epp.endpoints import Endpoint, EndpointState, InferenceRequest, Metrics

__all__ = ["NOW", "FakeClock", "endpoint", "endpoints", "request", "seeded"]

NOW = 1000.0
"""The instant `FakeClock` starts at and fresh metrics are stamped with."""


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def endpoint(
    name: str = "pod-0-rank-0",
    *,
    address: str = "10.0.0.1",
    port: int = 8000,
    waiting: int = 0,
    running: int = 0,
    kv: float = 0.0,
    active: Iterable[str] = (),
    waiting_models: Iterable[str] = (),
    max_lora: int = 0,
    block_size: int = 0,
    num_blocks: int = 0,
    updated_at: float = NOW,
) -> EndpointState:
    return EndpointState(
        Endpoint(name, address, port),
        Metrics(
            waiting=waiting, running=running, kv_cache_usage=kv,
            active_models=frozenset(active), waiting_models=frozenset(waiting_models),
            max_active_models=max_lora, cache_block_size=block_size,
            cache_num_blocks=num_blocks, updated_at=updated_at,
        ),
    )  # fmt: skip


def endpoints(count: int, **metrics: object) -> list[EndpointState]:
    """`count` endpoints `pod-<i>-rank-0` at `10.0.0.<i+1>:8000` with the same metrics."""
    return [
        endpoint(f"pod-{i}-rank-0", address=f"10.0.0.{i + 1}", **metrics)  # type: ignore[arg-type]  # keyword pass-through
        for i in range(count)
    ]


def request(
    model: str = "base-model",
    *,
    prompt: str = "",
    headers: Mapping[str, str] | None = None,
    priority: int = 0,
    request_id: str = "req-0",
    size_bytes: int = 0,
    cache_salt: str = "",
) -> InferenceRequest:
    return InferenceRequest(
        request_id, model, dict(headers or {}), prompt_text=prompt, cache_salt=cache_salt,
        priority=priority, size_bytes=size_bytes,
    )  # fmt: skip


def seeded(seed: int = 0) -> random.Random:
    """A reproducible RNG for the plugins' random choices."""
    return random.Random(seed)  # noqa: S311 - tie-breaks and sampling, not security
