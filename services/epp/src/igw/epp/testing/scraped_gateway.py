"""A gateway for fault tests: a real Envoy in front of an EPP with its real data layer.

Unlike `igw.epp.testing.gateway` (whose pool is whatever the test hands it, read as scraped just
now), the EPP here discovers its pods from an endpoints file and scrapes each one's `metricsPort`
every 50 ms, as it does in production: a test can break a pod's metrics page or its answers and
watch what the EPP and a client make of it.

`open_scraped_gateway(envoy_factory, workdir, pods)` starts, and owns until it exits, the EPP
(in-process, loopback, ports the OS picks, no TLS or tracing) and Envoy (one listener, the EPP's
ext_proc filter in the lean response mode, an ORIGINAL_DST cluster sending each request where
the EPP points), then a gRPC channel to the EPP's admin API. The pods and their metrics pages are
the test's, started before and stopped after.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

from igw.common.testing import OriginalDstCluster, gateway_bootstrap
from igw.common.testing.envoy_config import ExtProcFilter
from igw.epp.admin import AdminClient
from igw.epp.server import EppOptions, EppService
from igw.epp.testing.gateway import EnvoyStarter

__all__ = ["ScrapedGateway", "open_scraped_gateway"]


@dataclass(frozen=True, slots=True)
class ScrapedGateway:
    url: str
    """Envoy's listener, `http://127.0.0.1:<port>`."""
    epp: EppService
    admin: AdminClient
    """The EPP's admin API, as `igw-epp endpoints` reads it."""


@contextlib.asynccontextmanager
async def open_scraped_gateway(
    envoy_factory: EnvoyStarter,
    workdir: Path,
    pods: Mapping[str, tuple[int, int]],
    *,
    staleness_s: float = 2.0,
    route_timeout_s: float = 300.0,
) -> AsyncIterator[ScrapedGateway]:
    """`pods`: name -> (inference port, metrics port), all on 127.0.0.1. `staleness_s` is the
    EPP's `--metrics-staleness-threshold`, `route_timeout_s` Envoy's route timeout."""
    endpoints = workdir / "endpoints.yaml"
    lines = [
        f"  - {{name: {name}, address: 127.0.0.1, port: {port}, metricsPort: {metrics}}}"
        for name, (port, metrics) in pods.items()
    ]
    endpoints.write_text("\n".join(["endpoints:", *lines]) + "\n")
    options = EppOptions(
        endpoints_file=endpoints, grpc_port=0, grpc_health_port=0, metrics_port=0,
        host="127.0.0.1", secure_serving=False, tracing=False, grace_s=0.5,
        metrics_endpoint_auth=False, metrics_staleness_threshold_s=staleness_s,
    )  # fmt: skip
    async with contextlib.AsyncExitStack() as stack:
        epp = EppService(options)
        await epp.start()
        stack.push_async_callback(epp.stop)
        bootstrap = gateway_bootstrap(
            routes=[],
            ext_procs=[ExtProcFilter("epp", epp.server.grpc_port, tls=False,
                                     response_header_mode="SEND", response_body_mode="STREAMED")],
            clusters=[OriginalDstCluster("pool")], default_cluster="pool",
            route_timeout_s=route_timeout_s,
        )  # fmt: skip
        envoy = await envoy_factory.start_async(bootstrap)
        stack.push_async_callback(envoy.stop_async)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{epp.server.health_port}")
        stack.push_async_callback(channel.close)
        yield ScrapedGateway(envoy.url, epp, AdminClient(channel, timeout_s=10))
