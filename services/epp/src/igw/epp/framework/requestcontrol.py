"""The request-control kinds (§6): the hooks around a scheduling cycle and on the response.

PrepareData producers, admitters, PreRequest, ResponseComplete, the response plugins
(ResponseHeader, ResponseBody) and the saturation detector, one `Protocol` each, with the contract
the framework (`igw.epp.requestcontrol`) keeps when it calls them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

from igw.epp.endpoints import Endpoint, EndpointState, InferenceRequest
from igw.epp.framework.cycle_state import AttributeKey, CycleState
from igw.epp.framework.plugin import Plugin
from igw.epp.framework.response import Response
from igw.epp.framework.results import SchedulingResult

__all__ = [
    "Admitter",
    "DataProducer",
    "PreRequest",
    "ResponseBodyProcessor",
    "ResponseComplete",
    "ResponseHeaderProcessor",
    "SaturationDetector",
]


class DataProducer(Plugin, Protocol):
    """Writes per-endpoint attributes (`produces`) before admission and scheduling (PrepareData).

    Producers run once per request in dependency order of `produces`/`consumes`; an exception is
    logged and the request continues without that producer's attributes, as upstream.
    """

    produces: ClassVar[tuple[AttributeKey[Any], ...]]
    consumes: ClassVar[tuple[AttributeKey[Any], ...]]

    def prepare_data(
        self, request: InferenceRequest, state: CycleState, endpoints: Sequence[EndpointState]
    ) -> None: ...


class Admitter(Plugin, Protocol):
    """Returns None to admit the request, or the reason it is denied (answered 500)."""

    def admit_request(
        self, request: InferenceRequest, state: CycleState, endpoints: Sequence[EndpointState]
    ) -> str | None: ...


class PreRequest(Plugin, Protocol):
    """Sees the scheduling result after the pick, before the request is forwarded."""

    def pre_request(
        self, request: InferenceRequest, state: CycleState, result: SchedulingResult
    ) -> None: ...


class ResponseComplete(Plugin, Protocol):
    """Learns that the request sent to `endpoint` has finished (or failed); called at most once."""

    def response_complete(self, request: InferenceRequest, endpoint: Endpoint) -> None: ...


class ResponseHeaderProcessor(Plugin, Protocol):
    """Sees the response headers once, when they arrive (upstream's ResponseHeader).

    `response.headers` may be changed in place (the client gets the changes) and
    `response.req_metadata` holds the filter metadata Envoy sent with them (the served endpoint).
    `endpoint` is the one that served the request (the primary target unless the data plane
    reported a fallback), None for a request that was never scheduled. An exception is logged
    and the response continues.
    """

    def response_header(
        self, request: InferenceRequest, response: Response, endpoint: Endpoint | None
    ) -> None: ...


class ResponseBodyProcessor(Plugin, Protocol):
    """Sees each response body chunk, in order, and the end (upstream's ResponseBody).

    Called once per chunk Envoy sends (`response.start_of_stream` on the first) and exactly once
    with `response.end_of_stream`, when the body ends or the stream does (client gone): that call
    has the final `usage` and is the one whose `response.dynamic_metadata` reaches Envoy. Runs
    on every chunk, so it must be cheap; an exception is logged and the response continues.
    Configuring one makes the EPP read every response body, in the lean mode too.
    """

    def response_body(
        self, request: InferenceRequest, response: Response, endpoint: Endpoint | None
    ) -> None: ...


class SaturationDetector(Plugin, Protocol):
    """The pool's saturation over `endpoints`: 0.0 idle, >= 1.0 saturated; no endpoints -> 1.0."""

    def saturation(self, endpoints: Sequence[EndpointState]) -> float: ...
