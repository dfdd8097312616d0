"""Conditions the local gateway waits on: a child serves, and Envoy sees it healthy.

Each polls every 0.1 s until its condition holds, and raises `RuntimeError` when the child
exits first (with the tail of its log) or `TimeoutError` after `timeout_s`: generous bounds,
since a loaded 2-core machine can take several seconds to start a Python service.
"""

from __future__ import annotations

import asyncio
import time

import grpc
from grpc_health.v1 import health_pb2

from igw.common.testing.envoy_process import EnvoyProcess
from igw.e2e import _envoy_slots
from igw.e2e.processes import ChildProcess

__all__ = ["envoy_host_health", "grpc_serving", "port_listening"]

_POLL_S = 0.1


def _check_alive(child: ChildProcess) -> None:
    process = child.process
    if process is None or process.poll() is not None:
        status = None if process is None else process.returncode
        raise RuntimeError(f"{child.name} exited (status {status})\n{child.log_tail()}")


async def grpc_serving(child: ChildProcess, port: int, *, timeout_s: float = 60.0) -> None:
    """Until gRPC health on 127.0.0.1:`port` (plain text) answers SERVING for service ""."""
    deadline = time.monotonic() + timeout_s
    request = health_pb2.HealthCheckRequest(service="")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        while True:
            _check_alive(child)
            try:
                answer = await check(request, timeout=2.0)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise TimeoutError(f"{child.name} not SERVING on :{port} within {timeout_s:.0f} s")
            await asyncio.sleep(_POLL_S)


async def port_listening(child: ChildProcess, port: int, *, timeout_s: float = 60.0) -> None:
    """Until 127.0.0.1:`port` accepts connections (the simulator has no gRPC health)."""
    await asyncio.to_thread(child.wait_ready, port, timeout_s=timeout_s)


async def envoy_host_health(
    envoy: EnvoyProcess, cluster: str, port: int, *, healthy: bool = True, timeout_s: float = 30.0
) -> None:
    """Until Envoy's active health check marks `cluster`'s host on `port` as `healthy` (or not)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status, text = await asyncio.to_thread(envoy.admin_get, "/clusters")
        if status == 200 and _envoy_slots.host_health(text, cluster).get(port) == healthy:
            return
        if time.monotonic() > deadline:
            state = "healthy" if healthy else "unhealthy"
            raise TimeoutError(f"Envoy did not see {cluster} :{port} {state} in {timeout_s:.0f} s")
        await asyncio.sleep(_POLL_S)
