"""Assembles a running BBR from its options: plugins, adapter sources, metrics, ext_proc server.

Ownership and shutdown: `BbrService` owns the ext_proc server (and its health server), the
Prometheus endpoint (and, with `metrics_endpoint_auth`, the Kubernetes client its authorizer asks)
and the adapter sources (each a daemon thread feeding the `AdapterIndex`).
`stop()` goes in reverse order of `start()`: health NOT_SERVING and a graceful gRPC stop first,
then the sources and the metrics endpoint, then the tracer's last export.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import structlog
from kubernetes.client import ApiClient
from opentelemetry.sdk.trace import TracerProvider

from igw.bbr.adapters import AdapterIndex
from igw.bbr.metrics import BbrMetrics
from igw.bbr.models import ModelsEndpoint
from igw.bbr.plugins import BaseModelToHeader, PluginHandle
from igw.bbr.processor import BodyRouter
from igw.bbr.registry import DEFAULT_PLUGINS, PluginRegistry, PluginSpec
from igw.bbr.sources.configmap import ConfigMapSource
from igw.bbr.sources.file import AdapterFileSource
from igw.common.envoy import BodyMode
from igw.common.extproc import EXT_PROC_SERVICE, ExtProcServicer
from igw.common.health import HealthService
from igw.common.kube import load_kube_client
from igw.common.serving import ExtProcServer, ServerOptions
from igw.common.telemetry import (
    KubeMetricsAuthorizer,
    MetricsServer,
    cluster_metrics_authorizer,
    configure_tracing,
    shutdown_tracing,
    tracer,
)

__all__ = ["BbrOptions", "BbrService"]

_log = structlog.get_logger(__name__)
TRACER_NAME = "gateway-api-inference-extension/bbr/extproc"
SERVICE_NAME = "gateway-api-inference-extension/bbr"


@dataclass(frozen=True, slots=True)
class BbrOptions:
    grpc_port: int = 9004
    grpc_health_port: int = 9005
    metrics_port: int = 9090
    host: str = "0.0.0.0"
    streaming: bool = False
    secure_serving: bool = True
    cert_path: Path | None = None
    plugins: tuple[PluginSpec, ...] = DEFAULT_PLUGINS
    adapters_file: Path | None = None
    kubernetes: Literal["auto", "on", "off"] = "auto"
    namespace: str | None = field(default_factory=lambda: os.environ.get("NAMESPACE") or None)
    tracing: bool = True
    metrics_endpoint_auth: bool = True
    serve_models_endpoint: bool = True
    """Answer `GET /v1/models` from the adapter index (igw beyond upstream, `igw.bbr.models`)."""
    health_checking: bool = False
    """Also serve gRPC health on the ext_proc port (what Envoy's active health checks ask)."""
    grace_s: float = 5.0
    shutdown_delay_s: float = 0.0
    """Graceful stop: `igw.common.serving` (`--grace-period`, `--shutdown-delay`)."""


class BbrService:
    """A configured BBR; `start()` serves, `stop()` drains and releases everything."""

    def __init__(self, options: BbrOptions, *, tracer_provider: TracerProvider | None = None):
        self.options = options
        self.metrics = BbrMetrics()
        self.adapters = AdapterIndex()
        handle = PluginHandle(adapters=self.adapters, metrics=self.metrics)
        plugins = PluginRegistry.builtin().build(options.plugins, handle)
        models = ModelsEndpoint(self.adapters) if options.serve_models_endpoint else None
        self.router = BodyRouter(plugins, self.metrics, models)
        self._file_source = self._make_file_source()
        self._kube_client: ApiClient | None = None
        needs_adapters = any(isinstance(p, BaseModelToHeader) for p in plugins)
        self._configmaps = self._make_configmap_source() if needs_adapters else None
        self._provider = tracer_provider
        if self._provider is None and options.tracing:
            self._provider = configure_tracing(SERVICE_NAME)
        servicer = ExtProcServicer(
            self.router.exchange,
            request_mode=BodyMode.FULL_DUPLEX_STREAMED if options.streaming else BodyMode.BUFFERED,
            tracer=tracer(self._provider, TRACER_NAME) if self._provider else None,
        )
        self.health = HealthService(self._ready, services=(EXT_PROC_SERVICE,))
        self.server = ExtProcServer(
            servicer,
            self.health,
            ServerOptions(
                grpc_port=options.grpc_port,
                health_port=options.grpc_health_port,
                host=options.host,
                secure=options.secure_serving,
                cert_path=options.cert_path,
                grace_s=options.grace_s,
                shutdown_delay_s=options.shutdown_delay_s,
                health_on_grpc_port=options.health_checking,
            ),
        )
        self._metrics_kube_client: ApiClient | None = None
        self.metrics_server = MetricsServer(
            self.metrics.registry,
            port=options.metrics_port,
            host=options.host,
            authorizer=self._make_metrics_authorizer(),
        )

    def _make_metrics_authorizer(self) -> KubeMetricsAuthorizer | None:
        """Upstream's default: scrapers prove who they are with a token the API server checks."""
        if not self.options.metrics_endpoint_auth:
            return None
        authorizer, self._metrics_kube_client = cluster_metrics_authorizer()
        return authorizer

    def _make_file_source(self) -> AdapterFileSource | None:
        if self.options.adapters_file is None:
            return None
        source = AdapterFileSource(self.adapters, self.options.adapters_file)
        source.load_once()  # a broken file fails start-up loudly
        return source

    def _make_configmap_source(self) -> ConfigMapSource | None:
        mode = self.options.kubernetes
        if mode == "off":
            return None
        try:
            client = load_kube_client()
        except RuntimeError as e:
            if mode == "on":
                raise
            _log.info(
                "no Kubernetes configuration found; adapter ConfigMaps not watched", why=str(e)
            )
            return None
        self._kube_client = client
        # stop() closes the watch's socket, so a long read timeout costs nothing at shutdown
        # and spares the API server a reconnect per second per replica.
        return ConfigMapSource(self.adapters, client, self.options.namespace, stop_poll_s=30.0)

    def _ready(self) -> bool:
        return self._configmaps is None or self._configmaps.synced

    async def start(self) -> None:
        """Starts everything; if any part fails (a port in use ...), what started is stopped."""
        try:
            self.metrics_server.start()
            if self._file_source is not None:
                self._file_source.start()
            if self._configmaps is not None:
                self._configmaps.start()
            await self.server.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        await self.server.stop()
        if self._configmaps is not None:
            await asyncio.to_thread(self._configmaps.stop)
        if self._kube_client is not None:
            self._kube_client.close()  # type: ignore[no-untyped-call]  # kubernetes is untyped
        if self._file_source is not None:
            self._file_source.stop()
        # Its shutdown polls every 0.5 s: off the loop.
        await asyncio.to_thread(self.metrics_server.stop)
        if self._metrics_kube_client is not None:
            self._metrics_kube_client.close()  # type: ignore[no-untyped-call]  # kubernetes is untyped
        # The last export blocks on the network: keep it off the event loop.
        await asyncio.to_thread(shutdown_tracing, self._provider)
