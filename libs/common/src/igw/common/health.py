"""gRPC Health v1 for igw services, with upstream GIE's semantics (`cmd/epp/runner/health.go`).

Without leader election, upstream answers `Check` for *any* service name from one readiness
condition (a pool synced, a parser that supports the pool's protocol ...). With leader election
(`HealthService(..., leader=...)`) it tells the probes apart, so that the standby replicas stay
alive but out of rotation:

    service name                                       answer
    "liveness"                                         SERVING (the process answers)
    "readiness", "", ExternalProcessor's full name     SERVING iff ready and leader
    anything else                                      SERVICE_UNKNOWN (a status, not an error)

`List` names the given services (plus `liveness` and `readiness` with leader election) and
`Watch` is left unimplemented, as upstream; Kubernetes probes and Envoy's gRPC health checks only
use `Check`. `shutdown()` turns every answer NOT_SERVING (the first step of a graceful stop),
liveness included: the pod is going away anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

import grpc
from grpc_health.v1 import health_pb2

from igw.common.extproc import EXT_PROC_SERVICE

__all__ = ["LIVENESS", "READINESS", "HealthService"]

LIVENESS = "liveness"
READINESS = "readiness"
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
_LEADER_GATED = frozenset({READINESS, "", EXT_PROC_SERVICE})
_HEALTH = "grpc.health.v1.Health"
# The typeshed stubs predate the List method; its messages are reached untyped.
_health_list = cast(Any, health_pb2)


class HealthService:
    """Answers `Check` from `ready()` (and `leader()`, when given) until `shutdown()` is called.

    `leader` turns on upstream's leader-election answers (module docstring); both callables are
    called on the event loop for every check, so they must be cheap and must not block.
    """

    def __init__(
        self,
        ready: Callable[[], bool],
        services: Iterable[str] = (),
        *,
        leader: Callable[[], bool] | None = None,
    ) -> None:
        self._ready = ready
        self._leader = leader
        extra = (LIVENESS, READINESS) if leader is not None else ()
        self._services = tuple(dict.fromkeys((*services, *extra)))
        self._shutting_down = False

    def serving(self) -> bool:
        """What a load balancer's check (service "") is told: ready, and leader if electing."""
        return self.status("") == _SERVING

    def status(self, service: str) -> int:
        """The answer to a `Check` of `service`."""
        if self._shutting_down:
            return _NOT_SERVING
        if self._leader is None:
            return _SERVING if self._ready() else _NOT_SERVING
        if service == LIVENESS:
            return _SERVING
        if service not in _LEADER_GATED:
            return _UNKNOWN
        return _SERVING if self._ready() and self._leader() else _NOT_SERVING

    def shutdown(self) -> None:
        """From now on every check answers NOT_SERVING (the first step of a graceful stop)."""
        self._shutting_down = True

    async def check(
        self,
        request: health_pb2.HealthCheckRequest,
        _context: grpc.aio.ServicerContext[object, object],
    ) -> health_pb2.HealthCheckResponse:
        return health_pb2.HealthCheckResponse(status=self.status(request.service))

    async def list(
        self,
        _request: Any,
        _context: grpc.aio.ServicerContext[object, object],
    ) -> Any:
        statuses = {
            name: health_pb2.HealthCheckResponse(status=self.status(name))
            for name in self._services
        }
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
