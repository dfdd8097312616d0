"""The values every part of the EPP shares: endpoints, their metrics, and the request being placed.

An `Endpoint` is one model-server port (upstream names data-parallel ranks `<pod>-rank-<i>`);
`Metrics` is what the data layer last scraped from it; `EndpointState` pairs them as the scheduler
sees them. All are frozen: the data layer swaps in new snapshots, readers never see half-updated
values (STYLE.md §12).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "ENGINE_TYPE_LABEL",
    "Endpoint",
    "EndpointSource",
    "EndpointState",
    "InferenceRequest",
    "Metrics",
]

ENGINE_TYPE_LABEL = "inference.networking.k8s.io/engine-type"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One model-server port that requests can be sent to."""

    name: str
    """Unique within the pool: `<pod>-rank-<i>` for the i-th target port of a pod."""
    address: str
    """IP address (v4 or v6) or host name."""
    port: int
    pod: str = ""
    rank: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    metrics_port: int | None = None
    """Where `/metrics` is served; None means the serving port."""
    namespace: str = ""
    """The pod's namespace ("" without Kubernetes)."""

    @property
    def hostport(self) -> str:
        """`ip:port`, with brackets for IPv6: the form Envoy's ORIGINAL_DST cluster takes."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"

    @property
    def engine_type(self) -> str | None:
        return self.labels.get(ENGINE_TYPE_LABEL)


@dataclass(frozen=True, slots=True)
class Metrics:
    """Model-server state as last scraped (the attribute names upstream's plugins read)."""

    waiting: int = 0
    """WaitingQueueSize: requests queued in the model server."""
    running: int = 0
    """RunningRequestsSize."""
    kv_cache_usage: float = 0.0
    """KVCacheUsagePercent, as a fraction 0.0-1.0."""
    active_models: frozenset[str] = frozenset()
    """LoRA adapters currently loaded and running."""
    waiting_models: frozenset[str] = frozenset()
    max_active_models: int = 0
    cache_block_size: int = 0
    """Tokens per KV block (0 when the server does not say)."""
    cache_num_blocks: int = 0
    updated_at: float = 0.0
    """`time.monotonic()` of the scrape that produced these values; 0 = never scraped."""


@dataclass(frozen=True, slots=True)
class EndpointState:
    """An endpoint with its latest metrics, as the scheduler sees it at one instant."""

    endpoint: Endpoint
    metrics: Metrics

    def age(self, now: float) -> float:
        """Seconds since the metrics were scraped (infinite if never)."""
        if self.metrics.updated_at <= 0:
            return float("inf")
        return now - self.metrics.updated_at


class EndpointSource(Protocol):
    """The one-method view of the datastore that scheduling and the request path need."""

    def endpoints(self) -> Sequence[EndpointState]: ...


@dataclass(frozen=True, slots=True)
class InferenceRequest:
    """The request being placed, as the scheduler's plugins see it."""

    request_id: str
    target_model: str
    """The model the backend will be asked for (after any rewrite)."""
    headers: Mapping[str, str]
    prompt_text: str = ""
    """The text the prefix cache hashes (upstream §3.6: prompt, or JSON of messages ...)."""
    cache_salt: str = ""
    priority: int = 0
    fairness_id: str = "default-flow"
    size_bytes: int = 0
    stream: bool = False
    incoming_model: str = ""
    """The model the client asked for (flow control's metric labels)."""
