"""Test support other packages' tests use: builders, fakes and real-process fixtures."""

from igw.common.testing.echo import EchoBackend, run_echo_backends
from igw.common.testing.envoy_config import (
    ExtProcFilter,
    HeaderRoute,
    OriginalDstCluster,
    OtelTracing,
    StaticCluster,
    gateway_bootstrap,
)
from igw.common.testing.envoy_process import EnvoyError, EnvoyProcess
from igw.common.testing.ports import free_port

__all__ = [
    "EchoBackend",
    "EnvoyError",
    "EnvoyProcess",
    "ExtProcFilter",
    "HeaderRoute",
    "OriginalDstCluster",
    "OtelTracing",
    "StaticCluster",
    "free_port",
    "gateway_bootstrap",
    "run_echo_backends",
]
