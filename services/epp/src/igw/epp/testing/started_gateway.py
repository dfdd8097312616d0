"""A started gateway as a test drives and inspects it (`open_gateway` in
`igw.epp.testing.gateway` builds one).

A test sets the pool (`route_to`, endpoints built by `endpoint_for`), sends requests (`post`, or
`session` for streaming; `start_upload` for a client that never finishes its body), and reads
what an operator would: the EPP's Prometheus metrics (`metric`, and the per-model counts upstream
keeps: `scheduled`, `server_errors`, `ended`, `running`), Envoy's count of open ext_proc streams
to the EPP (`epp_streams`), the EPP's in-flight counts from its admin API (`in_flight`) and its
gRPC health (`serving`).

`settled()` waits until none of those shows anything open and otherwise names what leaked;
`still_serves(model)` is that, plus SERVING, plus a normal request through the healthy pod the
gateway keeps for it: what DESIGN §7 asks after every failure. Both raise AssertionError.

The `Gateway` owns nothing: `open_gateway` starts and stops everything it refers to.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import aiohttp
from grpc_health.v1 import health_pb2

from igw.common.extproc import EXT_PROC_SERVICE
from igw.common.testing import EnvoyProcess
from igw.epp.admin import AdminClient
from igw.epp.endpoints import EndpointState
from igw.epp.server import EppService
from igw.epp.testing.builders import endpoint
from igw.epp.testing.model_servers import ScriptedModelServer
from igw.epp.testing.requestpath import FreshEndpoints

__all__ = ["SETTLE_S", "Gateway", "Listening", "endpoint_for"]

SETTLE_S: Final = 10.0
"""Generous: streams end just after the client's answer, but the machine may be loaded."""
_REQUEST_TIMEOUT_S: Final = 30.0
_EPP_STREAMS: Final = "cluster.ext_proc_epp.upstream_rq_active"
"""Envoy's gauge of open requests on the EPP's cluster: one gRPC stream per HTTP request."""
_RUNNING: Final = "inference_objective_running_requests"


class Listening(Protocol):
    """A model server (or an address where none answers) the pool can name."""

    @property
    def name(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...


def endpoint_for(
    server: Listening, *, waiting: int = 0, kv: float = 0.0, active: Iterable[str] = ()
) -> EndpointState:
    """The pool's endpoint `<name>-rank-0` for `server`, with these metrics."""
    return endpoint(
        f"{server.name}-rank-0", address=server.host, port=server.port, waiting=waiting, kv=kv,
        active=active,
    )  # fmt: skip


@dataclass
class Gateway:
    """A started gateway (module docstring); built by `open_gateway`."""

    url: str
    envoy: EnvoyProcess
    epp: EppService
    endpoints: FreshEndpoints
    session: aiohttp.ClientSession
    admin: AdminClient
    healthy_pod: ScriptedModelServer
    health: Any
    """`grpc.health.v1.Health` on the EPP's health port (typeshed declares no RPC methods)."""

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("http://").split(":")
        return host, int(port)

    def route_to(self, *states: EndpointState) -> None:
        """The pool is these endpoints from now on."""
        self.endpoints.states = states

    async def post(
        self, body: bytes | Mapping[str, object], path: str = "/v1/completions", **headers: str
    ) -> tuple[int, bytes]:
        """POSTs `body` (bytes as they are, a mapping as JSON); the status and the whole answer."""
        data, payload = (body, None) if isinstance(body, bytes) else (None, body)
        async with asyncio.timeout(_REQUEST_TIMEOUT_S):  # nothing may hang
            async with self.session.post(
                self.url + path, data=data, json=payload, headers=headers
            ) as response:
                return response.status, await response.read()

    async def start_upload(
        self, model: str, path: str = "/v1/completions"
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A raw connection that sends a request's headers and the first chunk of its chunked
        body, a completion for `model` cut off in its prompt; the rest never comes."""
        reader, writer = await asyncio.open_connection(*self.address)
        head = (
            f"POST {path} HTTP/1.1\r\nhost: gateway\r\n"
            "content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        start = f'{{"model": {json.dumps(model)}, "prompt": "'.encode() + b"x" * 20_000
        writer.write(head.encode() + f"{len(start):x}\r\n".encode() + start + b"\r\n")
        await writer.drain()
        return reader, writer

    def metric(self, name: str, **labels: str) -> float:
        """A sample of the EPP's Prometheus registry (0 when it was never recorded)."""
        return self.epp.registry.get_sample_value(name, labels) or 0.0

    def scheduled(self, model: str, target: str | None = None, priority: str = "0") -> float:
        """`inference_objective_request_total`: requests scheduled onto a pod."""
        labels = _models(model, target)
        return self.metric("inference_objective_request_total", **labels, priority=priority)

    def server_errors(self, model: str, target: str | None = None) -> float:
        """Responses with a status other than 200, as upstream counts them."""
        labels = {**_models(model, target), "error_code": "ModelServerError"}
        return self.metric("inference_objective_request_error_total", **labels)

    def ended(self, model: str, target: str | None = None) -> float:
        """Responses whose end the EPP saw (the size histogram records only those)."""
        return self.metric("inference_objective_response_sizes_count", **_models(model, target))

    def running(self) -> float:
        """`inference_objective_running_requests` over every model."""
        return sum(
            sample.value
            for family in self.epp.registry.collect()
            if family.name == _RUNNING
            for sample in family.samples
        )

    async def in_flight(self) -> int | None:
        """Requests the EPP counts as sent and not complete, over every endpoint (admin API);
        None when no configured plugin tracks them."""
        inventory = await self.admin.list_endpoints()
        if not inventory.in_flight_tracked:
            return None
        return sum(report.in_flight.requests for report in inventory.endpoints)

    async def serving(self) -> bool:
        request = health_pb2.HealthCheckRequest(service=EXT_PROC_SERVICE)
        reply = await self.health.Check(request, timeout=SETTLE_S)
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def epp_streams(self) -> int:
        """The ext_proc streams Envoy holds open to the EPP (its admin `/stats`)."""
        stats = await asyncio.to_thread(self.envoy.admin_stats, _EPP_STREAMS)
        return stats.get(_EPP_STREAMS, 0)

    async def wait_for_epp_streams(self, count: int) -> None:
        async with asyncio.timeout(SETTLE_S):
            while await self.epp_streams() != count:  # noqa: ASYNC110 - Envoy's state, polled
                await asyncio.sleep(0.02)

    async def leftovers(self) -> dict[str, float]:
        return {
            "gateway streams to the EPP": await self.epp_streams(),
            "running requests": self.running(),
            "in flight": await self.in_flight() or 0,
        }

    async def settled(self) -> None:
        """Waits until nothing is open or counted anywhere; AssertionError naming a leak."""
        try:
            async with asyncio.timeout(SETTLE_S):
                while any((await self.leftovers()).values()):  # noqa: ASYNC110 - polled
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise AssertionError(f"left behind: {await self.leftovers()}") from None

    async def still_serves(self, model: str) -> None:
        """Settled, SERVING, and a normal request for `model` (routed to the healthy pod)
        succeeds and leaves nothing behind either; AssertionError otherwise."""
        await self.settled()
        if not await self.serving():
            raise AssertionError("the EPP does not report SERVING")
        self.route_to(endpoint_for(self.healthy_pod))
        before = len(self.healthy_pod.received)
        status, body = await self.post({"model": model, "prompt": "are you still there?"})
        if status != 200 or json.loads(body)["model"] != model:
            raise AssertionError(f"a normal request got {status}: {body[:500]!r}")
        if len(self.healthy_pod.received) != before + 1:
            raise AssertionError("the normal request did not reach the healthy pod once")
        await self.settled()


def _models(model: str, target: str | None) -> dict[str, str]:
    return {"model_name": model, "target_model_name": model if target is None else target}
