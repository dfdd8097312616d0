"""`EppOptions`: everything an EPP is configured with, as `igw-epp`'s flags give it
(`igw.epp.cli`) or a test builds it; `igw.epp.server` says what each part does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from igw.common.kube import LeaseTimings, Timings
from igw.epp.discovery import PoolOptions
from igw.epp.workers import WorkerRole

__all__ = ["EppOptions"]


@dataclass(frozen=True, slots=True)
class EppOptions:
    grpc_port: int = 9002
    grpc_health_port: int = 9003
    metrics_port: int = 9090
    host: str = "0.0.0.0"
    secure_serving: bool = True
    cert_path: Path | None = None
    cert_reload: bool = False
    health_checking: bool = False
    disable_endpoint_subset_filter: bool = False
    refresh_metrics_interval_s: float = 0.05
    metrics_staleness_threshold_s: float = 2.0
    config_file: Path | None = None
    config_text: str | None = None
    endpoints_file: Path | None = None
    pool: PoolOptions | None = None
    """Kubernetes discovery: the InferencePool (or standalone selector) to serve."""
    metrics_endpoint_auth: bool = True
    """Upstream's default: `/metrics` asks the Kubernetes API who the scraper is and whether it
    may `get /metrics` (TokenReview, SubjectAccessReview); needs a cluster."""
    watch_timings: Timings | None = None
    """Kubernetes watch timeouts and retry backoff (None: `Timings()`'s defaults)."""
    leader_election: bool = False
    """Active-passive replicas: only the Lease holder is ready (module docstring); needs `pool`."""
    lease_timings: LeaseTimings = field(default_factory=LeaseTimings)
    """The Lease's durations (controller-runtime's defaults, as upstream leaves them)."""
    pool_name: str = "igw"
    """The pool's name in metrics in file mode (`pool.name` on Kubernetes)."""
    objectives: Mapping[str, int] = field(default_factory=dict)
    """Objective name -> priority (stands in for InferenceObjective resources)."""
    tracing: bool = True
    grace_s: float = 5.0
    shutdown_delay_s: float = 0.0
    """Graceful stop: `igw.common.serving` (`--grace-period`, `--shutdown-delay`)."""
    response_sample_rate: float = 0.0
    """Lean mode: the share of responses whose body is read for metrics (`igw.epp.server`)."""
    metrics_source_flags: Mapping[str, Any] = field(default_factory=dict)
    """Upstream's deprecated `--model-server-metrics-*` flags, as `metrics-data-source` params."""
    worker: WorkerRole | None = None
    """One of `igw-epp --workers N`'s processes (`igw.epp.server`); None: the only one."""
