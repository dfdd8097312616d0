"""Assembles a running EPP from its options: config, parser, datastore, director, servers.

Ownership and shutdown (STYLE §14): `EppService` owns the ext_proc server (and its health
server), the Prometheus endpoint, the datastore (one metrics collector task per endpoint) and the
discovery: the static file's watch, or the Kubernetes watches (pool, pods, objectives, rewrites).
`start()` loads the endpoints file first (a broken file fails start-up) or starts the watches
(ready once the pool and its pods are listed), then serves; `stop()` goes in reverse: health
NOT_SERVING and a graceful gRPC stop, then the discovery watches, the datastore's collectors, the
metrics endpoint and the tracer's last export. With the `flowControl` gate the flow controller's
dispatcher task starts before the servers and stops after their drain (requests still queued then
end with 500, EvictedOther).

Response modes (DESIGN §6.1, reference/streaming-cost.md). The EPP serves both; which one a
request gets is Envoy's `processing_mode` for the filter, announced on every stream
(`protocol_config`), so one EPP needs no flag to switch:

* **compatible** (upstream's config: response body FULL_DUPLEX_STREAMED, trailers SEND): every
  response body passes through the EPP. Usage from JSON and SSE, latency, NTPOT, model name
  back-rewrite and in-flight accounting at the true response end all work, at upstream's cost:
  one gRPC message each way per SSE event, 70-290 µs of EPP CPU per token, so a 500-token stream
  costs 35-150x a non-streamed request.
* **lean** (response body STREAMED, trailers SKIP, request side still FULL_DUPLEX_STREAMED): per
  request the EPP reads the body only when it must (model back-rewrite) or when the response is
  in the sampled fraction `response_sample_rate` (usage, latency and size metrics); otherwise
  it answers the response headers with `CONTINUE_AND_REPLACE` and Envoy streams the body to the
  client without the EPP. A streamed request then costs about what a non-streamed one does. The
  price: token, latency and response-size histograms come from the sample only (none at the
  default rate 0.0), and a skipped request leaves the in-flight counts (running gauge,
  ResponseComplete hooks) when its response starts, not when it ends; the model servers' own
  running/waiting metrics cover the decode phase. Envoy ignores `mode_override` while a body mode
  is FULL_DUPLEX_STREAMED, which is why the lean mode needs STREAMED on the response side; and
  the core never skips a full-duplex body (chunks already sent would be lost).

Health (§9.2): SERVING for any service name once the endpoints are known (the static file was
loaded, a source was injected, or the pool and its pods were listed) and the parser supports the
pool's `appProtocol` (both built-in parsers speak `http`); a deleted pool turns it NOT_SERVING.

High availability (§9.4, `--ha-enable-leader-election`): active-passive on the Lease
`epp-<namespace>-<pool>.gateway-api-inference-extension.sigs.k8s.io` in the pool namespace, taken
with client-go's algorithm and controller-runtime's 15/10/2 s (`igw.common.kube.LeaderElector`,
its own thread and API client). Every replica watches the pool and its pods, scrapes and serves
ext_proc, so a standby's datastore is warm the moment it leads; only the leader's health answers
SERVING for `readiness`, `""` and the ext_proc service, `liveness` is SERVING on every replica
(`igw.common.health`). Upstream v1.5.0 differs: its reconcilers are controller-runtime controllers,
leader-elected by default, so its standbys keep an empty datastore until they lead. The election
starts once the servers listen (a replica that cannot bind never takes the Lease); `stop()` turns
health NOT_SERVING, then releases the Lease while the gRPC server drains, so the standby takes
over within a retry period rather than after the drain (upstream releases after its runnables
have stopped). A lost Lease only turns readiness off; the replica campaigns again.

Workers (`worker`, set by `igw-epp --workers N`, `igw.epp.workers`): the ext_proc port is shared
(SO_REUSEPORT; the kernel spreads connections, not streams, so Envoy must open several: see
docs/concepts/workers.md); only worker 0 scrapes, reports the pool gauges and takes part in
leader election (the others answer health as it says it leads, `Peers.leading`); `Peers`
shares the routing state; once serving, the worker writes its ready file.
"""

from __future__ import annotations

import asyncio
import os
from importlib import metadata

import structlog
from kubernetes.client import ApiClient
from opentelemetry.sdk.trace import TracerProvider

from igw.common.envoy import BodyMode
from igw.common.extproc import EXT_PROC_SERVICE, ExtProcServicer
from igw.common.health import HealthService
from igw.common.kube import LeaderElector, load_kube_client
from igw.common.serving import ExtProcServer, ServerOptions
from igw.common.telemetry import (
    MetricsServer,
    cluster_metrics_authorizer,
    configure_tracing,
    shutdown_tracing,
    tracer,
)
from igw.epp.admin import AdminService
from igw.epp.config import EppConfig, load_config, load_config_file
from igw.epp.datalayer import Datastore, PoolMetricsCollector, datastore_from_config
from igw.epp.discovery import KubernetesDiscovery, ObjectStore, StaticDiscovery
from igw.epp.endpoints import EndpointSource
from igw.epp.flowcontrol import FlowController, flow_controller
from igw.epp.framework import PluginHandle, SchedulerMetrics
from igw.epp.requestpath import (
    Director,
    Exchanges,
    ModelRewriteStore,
    Objectives,
    ObjectiveStore,
    RequestMetrics,
    StaticObjectives,
)
from igw.epp.scheduling.plugins import ConcurrencyDetector
from igw.epp.server_options import EppOptions
from igw.epp.workers import Peers, WorkerRole

__all__ = ["EppOptions", "EppService"]

_log = structlog.get_logger(__name__)
SERVICE_NAME = "gateway-api-inference-extension/epp"
TRACER_NAME = "gateway-api-inference-extension/epp/extproc"
ORCHESTRATION_TRACER = "gateway-api-inference-extension"


def _elects(worker: WorkerRole | None) -> bool:
    """Whether this process scrapes and takes part in leader election (one per pod): the only
    process, or worker 0 of several."""
    return worker is None or worker.scraper


def _load(options: EppOptions, handle: PluginHandle) -> EppConfig:
    if options.config_file is not None:
        return load_config_file(options.config_file, handle=handle)
    return load_config(options.config_text, handle=handle)


def _build_info() -> tuple[str, str]:
    try:
        version = metadata.version("igw-epp")
    except metadata.PackageNotFoundError:
        version = "dev"
    return os.environ.get("IGW_COMMIT", "unknown"), version


def _objective_stores(
    options: EppOptions, handle: PluginHandle
) -> tuple[Objectives, ModelRewriteStore | None]:
    """InferenceObjective and InferenceModelRewrite stores for a pool on Kubernetes; the static
    `--objective` table (and no rewrites) without one, or in standalone mode (no CRDs)."""
    pool = options.pool
    if pool is None or pool.selector is not None:
        return StaticObjectives(options.objectives), None
    ref = {"pool_group": pool.group, "pool_namespace": pool.namespace}
    return (
        ObjectiveStore(pool.name, **ref),
        ModelRewriteStore(pool.name, rng=handle.rng, **ref),
    )


class EppService:
    """A configured EPP; `start()` serves, `stop()` drains and releases everything.

    `endpoint_source` replaces the datastore and static discovery (tests pass a fixed list).
    Raises `ConfigError` for a bad configuration, `ValueError` for deprecated metrics flags that
    do not apply to the configured data source.
    """

    def __init__(
        self,
        options: EppOptions,
        *,
        tracer_provider: TracerProvider | None = None,
        endpoint_source: EndpointSource | None = None,
    ) -> None:
        self.options = options
        if options.leader_election and options.pool is None:
            raise ValueError("leader election needs a pool on Kubernetes (a Lease to take)")
        self.elector: LeaderElector | None = None
        self._lease_client: ApiClient | None = None
        handle = PluginHandle(metrics=SchedulerMetrics())
        self.registry = handle.metrics.registry
        self.config = _load(options, handle)
        self.datastore: Datastore | None = None
        self.discovery: StaticDiscovery | None = None
        self.kubernetes: KubernetesDiscovery | None = None
        self._synced = endpoint_source is not None
        self.objectives, self.rewrites = _objective_stores(options, handle)
        source = endpoint_source if endpoint_source is not None else self._make_datastore()
        worker = options.worker
        if _elects(worker):  # pool gauges from the process that scrapes
            self.registry.register(
                PoolMetricsCollector(
                    options.pool.name if options.pool is not None else options.pool_name,
                    source,
                    staleness_threshold_s=options.metrics_staleness_threshold_s,
                )
            )
        self.flow_control = self._make_flow_control(source)
        self.metrics = RequestMetrics(self.registry)
        self.metrics.info.labels(*_build_info()).set(1)
        self._provider = tracer_provider
        if self._provider is None and options.tracing:
            self._provider = configure_tracing(SERVICE_NAME)
        traced = self._provider is not None
        self.director, self.exchanges = self._request_path(source, handle, traced)
        config = self.config
        self.health = HealthService(
            self._ready,
            services=(EXT_PROC_SERVICE,),
            leader=self._leading if options.leader_election else None,
        )
        # "Why this pod?": ListEndpoints and Explain, served beside health on its local port.
        self.admin = AdminService.for_director(
            self.director,
            config.plugins,
            staleness_threshold_s=options.metrics_staleness_threshold_s,
        )
        self.server = self._make_server(traced)
        self.peers = None if worker is None else Peers(worker, config.plugins, self.datastore)
        self._metrics_kube_client: ApiClient | None = None
        authorizer = None
        if options.metrics_endpoint_auth:
            authorizer, self._metrics_kube_client = cluster_metrics_authorizer()
        self.metrics_server = MetricsServer(
            self.registry, port=options.metrics_port, host=options.host, authorizer=authorizer
        )

    def _request_path(
        self, source: EndpointSource, handle: PluginHandle, traced: bool
    ) -> tuple[Director, Exchanges]:
        """The director (request -> Decision) and the per-stream exchange factory."""
        options, config = self.options, self.config
        director = Director(
            source=source,
            scheduler=config.scheduler,
            request_control=config.request_control,
            parser=config.parser,
            metrics=self.metrics,
            objectives=self.objectives,
            rewrites=self.rewrites,
            subset_filter=not options.disable_endpoint_subset_filter,
            tracer=tracer(self._provider, ORCHESTRATION_TRACER) if traced else None,
            rng=handle.rng,
        )
        exchanges = Exchanges(
            director, config.request_control, config.parser, self.metrics,
            response_sample_rate=options.response_sample_rate, rng=handle.rng,
            # A detector counting requests in flight must see each response end, lean mode too.
            follow_responses=isinstance(config.saturation_detector, ConcurrencyDetector),
        )  # fmt: skip
        return director, exchanges

    def _make_datastore(self) -> Datastore:
        self.datastore = datastore_from_config(
            self.config.data_layer,
            refresh_interval_s=self.options.refresh_metrics_interval_s,
            source_overrides=self.options.metrics_source_flags,
        )
        if not _elects(self.options.worker):
            self.datastore.collecting = False  # worker 0's scrapes arrive through `Peers`
        if self.options.endpoints_file is not None:
            self.discovery = StaticDiscovery(self.options.endpoints_file, self.datastore)
        elif self.options.pool is not None:
            stores: dict[str, ObjectStore] = {}
            if isinstance(self.objectives, ObjectiveStore):
                stores["inferenceobjectives"] = self.objectives.reconcile
            if isinstance(self.rewrites, ModelRewriteStore):
                stores["inferencemodelrewrites"] = self.rewrites.reconcile
            self.kubernetes = KubernetesDiscovery(
                self.options.pool, self.datastore, stores=stores, timings=self.options.watch_timings
            )
        return self.datastore

    def _make_flow_control(self, source: EndpointSource) -> FlowController | None:
        """With the `flowControl` gate: the flow controller as the admission, woken by new
        endpoint metrics (and by completions, through the request-control hooks)."""
        if "flowControl" not in self.config.feature_gates:
            return None
        pool = self.options.pool
        controller = flow_controller(
            self.config.flow_control, self.config.plugins,
            detector=self.config.saturation_detector, source=source, registry=self.registry,
            pool_name=pool.name if pool is not None else self.options.pool_name,
        )  # fmt: skip
        self.config.request_control.use_admission(controller)
        if self.datastore is not None:
            self.datastore.on_change = controller.wake
        return controller

    def _make_server(self, traced: bool) -> ExtProcServer:
        opts = self.options
        servicer = ExtProcServicer(
            self.exchanges,
            request_mode=BodyMode.FULL_DUPLEX_STREAMED,
            response_mode=BodyMode.FULL_DUPLEX_STREAMED,
            tracer=tracer(self._provider, TRACER_NAME) if traced else None,
        )
        return ExtProcServer(
            servicer,
            self.health,
            ServerOptions(
                grpc_port=opts.grpc_port,
                health_port=opts.grpc_health_port,
                host=opts.host,
                secure=opts.secure_serving,
                cert_path=opts.cert_path,
                cert_reload=opts.cert_reload,
                grace_s=opts.grace_s,
                shutdown_delay_s=opts.shutdown_delay_s,
                health_on_grpc_port=opts.health_checking,
                reuse_port=opts.worker is not None,
            ),
            health_port_handlers=[self.admin.rpc_handler()],
        )

    def _write_ready(self) -> None:
        if self.options.worker is not None:
            self.options.worker.write_ready({
                "grpc_port": self.server.grpc_port, "health_port": self.server.health_port,
                "metrics_port": self.metrics_server.port,
            })  # fmt: skip

    def _ready(self) -> bool:
        if self.kubernetes is not None:
            return self.kubernetes.ready
        return self._synced

    def _leading(self) -> bool:
        if self.elector is not None:
            return self.elector.is_leader
        # A worker other than 0 answers as worker 0, which holds the pod's Lease, said (worker 0
        # never hears its own word, so before its election starts this is False there too).
        return self.peers is not None and self.peers.leading()

    async def _start_election(self) -> None:
        pool = self.options.pool
        if pool is None:  # refused in __init__
            return
        self._lease_client = await asyncio.to_thread(load_kube_client)
        name = f"epp-{pool.namespace}-{pool.name}.gateway-api-inference-extension.sigs.k8s.io"
        self.elector = LeaderElector(
            self._lease_client, name, pool.namespace, timings=self.options.lease_timings
        )
        self.elector.start()

    async def _stop_election(self) -> None:
        """Release the Lease (a no-op after `elector.stop(release=False)`); joining blocks."""
        if self.elector is not None:
            await asyncio.to_thread(self.elector.stop)
        if self._lease_client is not None:
            client, self._lease_client = self._lease_client, None
            await asyncio.to_thread(client.close)

    async def start(self) -> None:
        """Starts everything; if any part fails (a port in use ...), what started is stopped."""
        try:
            if self.discovery is not None:
                self.discovery.load()
                self._synced = True
            self.metrics_server.start()
            if self.datastore is not None and _elects(self.options.worker):
                await self.datastore.start()  # a worker but 0 gets its scrapes from `Peers`
            if self.discovery is not None:
                self.discovery.start()
            if self.kubernetes is not None:
                await self.kubernetes.start()
            if self.flow_control is not None:
                self.flow_control.start()
            if self.peers is not None:
                await self.peers.start()
            await self.server.start()
            if self.options.leader_election and _elects(self.options.worker):
                await self._start_election()
                if self.peers is not None:
                    self.peers.say_leader(self._leading)
            self._write_ready()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        self.health.shutdown()
        await asyncio.gather(self.server.stop(), self._stop_election())
        if self.peers is not None:
            self.peers.close()
        if self.flow_control is not None:
            await self.flow_control.stop()
        if self.discovery is not None:
            await self.discovery.stop()
        if self.kubernetes is not None:
            await self.kubernetes.stop()
        if self.datastore is not None:
            await self.datastore.close()
        # Its shutdown polls every 0.5 s: off the loop, which still serves the drain.
        await asyncio.to_thread(self.metrics_server.stop)
        if self._metrics_kube_client is not None:
            await asyncio.to_thread(self._metrics_kube_client.close)
        # The last export blocks on the network: keep it off the event loop.
        await asyncio.to_thread(shutdown_tracing, self._provider)
