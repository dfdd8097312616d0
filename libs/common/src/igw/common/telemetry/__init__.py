"""Telemetry shared by the igw services: logging, the Prometheus endpoint and its auth, tracing."""

from __future__ import annotations

from igw.common.telemetry.logging import (
    DEBUG,
    DEFAULT,
    TRACE,
    VERBOSE,
    configure_logging,
    enabled,
    get_logger,
    stdlib_level,
)
from igw.common.telemetry.metrics import MetricsServer
from igw.common.telemetry.metrics_auth import (
    AccessDecision,
    KubeMetricsAuthorizer,
    MetricsAuthorizer,
    cluster_metrics_authorizer,
)
from igw.common.telemetry.tracing import (
    configure_tracing,
    extract_from_grpc_metadata,
    inject_headers,
    shutdown_tracing,
    tracer,
)

__all__ = [
    "DEBUG",
    "DEFAULT",
    "TRACE",
    "VERBOSE",
    "AccessDecision",
    "KubeMetricsAuthorizer",
    "MetricsAuthorizer",
    "MetricsServer",
    "cluster_metrics_authorizer",
    "configure_logging",
    "configure_tracing",
    "enabled",
    "extract_from_grpc_metadata",
    "get_logger",
    "inject_headers",
    "shutdown_tracing",
    "stdlib_level",
    "tracer",
]
