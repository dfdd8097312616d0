"""gRPC Health v1 for igw services, with upstream GIE's semantics.

Upstream answers `Check` for *any* service name from one readiness condition (a pool synced, a
parser that supports the pool's protocol ...), implements `List`, and leaves `Watch`
unimplemented; Kubernetes probes and Envoy's gRPC health checks only use `Check`. `HealthService`
does the same with a readiness callable, and turns NOT_SERVING for everyone at shutdown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

import grpc
from grpc_health.v1 import health_pb2

__all__ = ["HealthService"]

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
_HEALTH = "grpc.health.v1.Health"
# The typeshed stubs predate the List method; its messages are reached untyped.
_health_list = cast(Any, health_pb2)


class HealthService:
    """Answers `Check` from `ready()` for any service name until `shutdown()` is called."""

    def __init__(self, ready: Callable[[], bool], services: Iterable[str] = ()) -> None:
        self._ready = ready
        self._services = tuple(services)
        self._shutting_down = False

    def serving(self) -> bool:
        return not self._shutting_down and self._ready()

    def shutdown(self) -> None:
        """From now on every check answers NOT_SERVING (the first step of a graceful stop)."""
        self._shutting_down = True

    async def check(
        self,
        _request: health_pb2.HealthCheckRequest,
        _context: grpc.aio.ServicerContext[object, object],
    ) -> health_pb2.HealthCheckResponse:
        return health_pb2.HealthCheckResponse(status=_SERVING if self.serving() else _NOT_SERVING)

    async def list(
        self,
        _request: Any,
        _context: grpc.aio.ServicerContext[object, object],
    ) -> Any:
        status = _SERVING if self.serving() else _NOT_SERVING
        statuses = {name: health_pb2.HealthCheckResponse(status=status) for name in self._services}
        return _health_list.HealthListResponse(statuses=statuses)

    def rpc_handler(self) -> grpc.GenericRpcHandler:
        """The handler to add to a `grpc.aio.Server` (Watch is left unimplemented, as upstream)."""
        methods = {
            "Check": grpc.unary_unary_rpc_method_handler(
                self.check,
                request_deserializer=health_pb2.HealthCheckRequest.FromString,
                response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
            ),
            "List": grpc.unary_unary_rpc_method_handler(
                self.list,
                request_deserializer=_health_list.HealthListRequest.FromString,
                response_serializer=_health_list.HealthListResponse.SerializeToString,
            ),
        }
        return grpc.method_handlers_generic_handler(_HEALTH, methods)
