"""Test support other packages' tests use: builders, fakes and real-process fixtures."""

from igw.common.testing.echo import EchoBackend, run_echo_backends
from igw.common.testing.envoy_config import (
    ExtProcFilter,
    HeaderRoute,
    LuaFilter,
    OriginalDstCluster,
    OtelTracing,
    StaticCluster,
    gateway_bootstrap,
)
from igw.common.testing.envoy_process import EnvoyError, EnvoyProcess
from igw.common.testing.messages import (
    PROCESS_METHOD,
    ReplyView,
    describe,
    describe_all,
    ext_proc_call,
    request_body,
    request_headers,
    request_trailers,
    response_body,
    response_headers,
    response_trailers,
    streamed_body,
)
from igw.common.testing.ports import free_port, refused_port

__all__ = [
    "PROCESS_METHOD",
    "EchoBackend",
    "EnvoyError",
    "EnvoyProcess",
    "ExtProcFilter",
    "HeaderRoute",
    "LuaFilter",
    "OriginalDstCluster",
    "OtelTracing",
    "ReplyView",
    "StaticCluster",
    "describe",
    "describe_all",
    "ext_proc_call",
    "free_port",
    "gateway_bootstrap",
    "refused_port",
    "request_body",
    "request_headers",
    "request_trailers",
    "response_body",
    "response_headers",
    "response_trailers",
    "run_echo_backends",
    "streamed_body",
]
