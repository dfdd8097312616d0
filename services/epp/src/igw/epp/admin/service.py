"""The EPP admin gRPC service (`igw.epp.admin.v1.EndpointPickerAdmin`) and its client.

This module is the protobuf boundary of the admin API (STYLE §10): the servicer turns
`Inventory` and `Explanation` values into messages, the client turns messages back into the same
values, and nothing else in igw sees the generated `admin_pb2` module. Handlers are registered
generically (as `igw.common.health` does), so the generated `_grpc` module is not imported.

The service is meant for the EPP's health port: an insecure, local port (STYLE §14's shutdown
order applies to it with the health server). Both methods are read-only; see `explain`'s module
docstring for what `Explain` does and does not do.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import grpc

from igw.epp._generated.igw.epp.admin.v1 import admin_pb2
from igw.epp.admin.explain import Explainer, ExplainFailure, Explanation
from igw.epp.admin.inventory import EndpointReport, InFlightReader, Inventory, find_inflight_reader
from igw.epp.endpoints import Endpoint, EndpointSource, Metrics
from igw.epp.framework.results import FilterStep, ProfileExplanation, ScoreColumn
from igw.epp.requestpath import Director
from igw.epp.scheduling.attributes import InFlightLoad

__all__ = ["EXPLAIN", "LIST_ENDPOINTS", "SERVICE", "AdminClient", "AdminService"]

SERVICE = "igw.epp.admin.v1.EndpointPickerAdmin"
LIST_ENDPOINTS = f"/{SERVICE}/ListEndpoints"
EXPLAIN = f"/{SERVICE}/Explain"

_Context: TypeAlias = "grpc.aio.ServicerContext[object, object]"


class AdminService:
    """Answers `ListEndpoints` and `Explain` from one EPP's endpoints and configuration."""

    def __init__(
        self,
        source: EndpointSource,
        explainer: Explainer,
        *,
        staleness_threshold_s: float = 2.0,
        in_flight: InFlightReader | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.explainer = explainer
        self.staleness_threshold_s = staleness_threshold_s
        self.in_flight = in_flight
        self.clock = clock

    @classmethod
    def for_director(
        cls,
        director: Director,
        plugins: Mapping[str, object],
        *,
        staleness_threshold_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> AdminService:
        """The service for a running EPP: explanations by its director, endpoints from its
        director's source, in-flight counts from the tracker among the config's `plugins`."""
        return cls(
            director.source, Explainer(director), staleness_threshold_s=staleness_threshold_s,
            in_flight=find_inflight_reader(plugins), clock=clock,
        )  # fmt: skip

    def inventory(self) -> Inventory:
        return Inventory.collect(
            self.source, staleness_threshold_s=self.staleness_threshold_s,
            in_flight=self.in_flight, now=self.clock(),
        )  # fmt: skip

    async def list_endpoints(
        self, _request: admin_pb2.ListEndpointsRequest, _context: _Context
    ) -> admin_pb2.ListEndpointsResponse:
        return inventory_message(self.inventory())

    async def explain(
        self, request: admin_pb2.ExplainRequest, _context: _Context
    ) -> admin_pb2.ExplainResponse:
        explanation = await self.explainer.explain(request.path, request.headers, request.body)
        return explanation_message(explanation)

    def rpc_handler(self) -> grpc.GenericRpcHandler:
        """The handler to add to a `grpc.aio.Server` (the EPP's health server)."""
        methods: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            "ListEndpoints": grpc.unary_unary_rpc_method_handler(
                self.list_endpoints,
                request_deserializer=admin_pb2.ListEndpointsRequest.FromString,
                response_serializer=admin_pb2.ListEndpointsResponse.SerializeToString,
            ),
            "Explain": grpc.unary_unary_rpc_method_handler(
                self.explain,
                request_deserializer=admin_pb2.ExplainRequest.FromString,
                response_serializer=admin_pb2.ExplainResponse.SerializeToString,
            ),
        }
        return grpc.method_handlers_generic_handler(SERVICE, methods)


class AdminClient:
    """Calls an EPP's admin service over `channel`, answering with the same values."""

    def __init__(self, channel: grpc.aio.Channel, *, timeout_s: float = 10.0) -> None:
        self._timeout_s = timeout_s
        self._list = channel.unary_unary(
            LIST_ENDPOINTS,
            request_serializer=admin_pb2.ListEndpointsRequest.SerializeToString,
            response_deserializer=admin_pb2.ListEndpointsResponse.FromString,
        )
        self._explain = channel.unary_unary(
            EXPLAIN,
            request_serializer=admin_pb2.ExplainRequest.SerializeToString,
            response_deserializer=admin_pb2.ExplainResponse.FromString,
        )

    async def list_endpoints(self) -> Inventory:
        message: admin_pb2.ListEndpointsResponse = await self._list(
            admin_pb2.ListEndpointsRequest(), timeout=self._timeout_s
        )
        return inventory_from_message(message)

    async def explain(self, path: str, headers: Mapping[str, str], body: bytes) -> Explanation:
        request = admin_pb2.ExplainRequest(path=path, headers=dict(headers), body=body)
        message: admin_pb2.ExplainResponse = await self._explain(request, timeout=self._timeout_s)
        return explanation_from_message(message)


def inventory_message(inventory: Inventory) -> admin_pb2.ListEndpointsResponse:
    return admin_pb2.ListEndpointsResponse(
        endpoints=[_endpoint_message(report) for report in inventory.endpoints],
        staleness_threshold_seconds=inventory.staleness_threshold_s,
        in_flight_tracked=inventory.in_flight_tracked,
    )


def _endpoint_message(report: EndpointReport) -> admin_pb2.EndpointStatus:
    e, m = report.endpoint, report.metrics
    metrics = admin_pb2.EndpointMetrics(
        waiting=m.waiting, running=m.running, kv_cache_usage=m.kv_cache_usage,
        active_adapters=sorted(m.active_models), waiting_adapters=sorted(m.waiting_models),
        max_active_adapters=m.max_active_models, cache_block_size=m.cache_block_size,
        cache_num_blocks=m.cache_num_blocks,
    )  # fmt: skip
    return admin_pb2.EndpointStatus(
        name=e.name, address=e.address, port=e.port, pod=e.pod, rank=e.rank,
        labels=dict(e.labels), engine_type=e.engine_type or "", metrics=metrics,
        metrics_age_seconds=report.age_s, stale=report.stale,
        in_flight_requests=report.in_flight.requests, in_flight_tokens=report.in_flight.tokens,
    )  # fmt: skip


def inventory_from_message(message: admin_pb2.ListEndpointsResponse) -> Inventory:
    reports = []
    for status in message.endpoints:
        m = status.metrics
        metrics = Metrics(
            waiting=m.waiting, running=m.running, kv_cache_usage=m.kv_cache_usage,
            active_models=frozenset(m.active_adapters),
            waiting_models=frozenset(m.waiting_adapters), max_active_models=m.max_active_adapters,
            cache_block_size=m.cache_block_size, cache_num_blocks=m.cache_num_blocks,
        )  # fmt: skip
        endpoint = Endpoint(
            status.name, status.address, status.port, status.pod, status.rank,
            dict(status.labels),
        )  # fmt: skip
        age = status.metrics_age_seconds if status.HasField("metrics_age_seconds") else None
        load = InFlightLoad(status.in_flight_requests, status.in_flight_tokens)
        reports.append(EndpointReport(endpoint, metrics, age, status.stale, load))
    return Inventory(tuple(reports), message.staleness_threshold_seconds, message.in_flight_tracked)


def explanation_message(explanation: Explanation) -> admin_pb2.ExplainResponse:
    error = explanation.error
    return admin_pb2.ExplainResponse(
        request_id=explanation.request_id, model=explanation.model,
        target_model=explanation.target_model, priority=explanation.priority,
        candidates=explanation.candidates,
        profiles=[_profile_message(n, p) for n, p in explanation.profiles.items()],
        primary_profile=explanation.primary_profile, picked=explanation.picked,
        error=None if error is None else admin_pb2.ExplainError(
            http_status=error.status, code=error.code, message=error.message, body=error.body,
        ),
        note=explanation.note,
    )  # fmt: skip


def _profile_message(name: str, p: ProfileExplanation) -> admin_pb2.ProfileExplanation:
    return admin_pb2.ProfileExplanation(
        name=name, endpoints=p.endpoints,
        filters=[admin_pb2.FilterStep(plugin=f.plugin, remaining=f.remaining) for f in p.filters],
        scorers=[
            admin_pb2.ScorerColumn(plugin=s.plugin, type=s.plugin_type, weight=s.weight,
                                   scores=s.scores, details=s.details)
            for s in p.scorers
        ],
        totals=p.totals, picked=p.picked, error=p.error or "",
    )  # fmt: skip


def explanation_from_message(message: admin_pb2.ExplainResponse) -> Explanation:
    error = message.error if message.HasField("error") else None
    return Explanation(
        request_id=message.request_id, model=message.model, target_model=message.target_model,
        priority=message.priority, candidates=tuple(message.candidates),
        profiles={p.name: _profile_from_message(p) for p in message.profiles},
        primary_profile=message.primary_profile, picked=tuple(message.picked),
        error=None if error is None else ExplainFailure(
            error.http_status, error.code, error.message
        ),
        note=message.note,
    )  # fmt: skip


def _profile_from_message(p: admin_pb2.ProfileExplanation) -> ProfileExplanation:
    return ProfileExplanation(
        endpoints=tuple(p.endpoints),
        filters=tuple(FilterStep(f.plugin, tuple(f.remaining)) for f in p.filters),
        scorers=tuple(
            ScoreColumn(s.plugin, s.type, s.weight, tuple(s.scores), tuple(s.details))
            for s in p.scorers
        ),
        totals=tuple(p.totals), picked=tuple(p.picked), error=p.error or None,
    )  # fmt: skip
