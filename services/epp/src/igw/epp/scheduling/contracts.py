"""The plugin kinds of the scheduler, one small `Protocol` each, and how a plugin's kinds are known.

A plugin class may implement several kinds (`utilization-detector` is a Filter and a
SaturationDetector), as upstream's Go interfaces allow; its kinds are read from the methods it
defines (`plugin_kinds`). Every method runs on the event loop and must not block. Endpoint lists
are never mutated in place: a plugin returns new sequences. Plugins never clamp, weight or time
themselves: the framework does (STYLE §7).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, Protocol, Self

from igw.epp.endpoints import Endpoint, EndpointState, InferenceRequest
from igw.epp.scheduling.cycle_state import AttributeKey, CycleState
from igw.epp.scheduling.handle import PluginHandle
from igw.epp.scheduling.response import Response
from igw.epp.scheduling.results import ProfileResult, SchedulingResult

__all__ = [
    "KIND_METHODS",
    "Admitter",
    "DataProducer",
    "Filter",
    "Picker",
    "Plugin",
    "PreRequest",
    "ProfileHandler",
    "ResponseBodyProcessor",
    "ResponseComplete",
    "ResponseHeaderProcessor",
    "SaturationDetector",
    "Scorer",
    "plugin_kinds",
]

KIND_METHODS: Mapping[str, str] = {
    "profile-handler": "pick_profiles",
    "filter": "filter",
    "scorer": "score",
    "picker": "pick",
    "data-producer": "prepare_data",
    "admitter": "admit_request",
    "pre-request": "pre_request",
    "response-complete": "response_complete",
    "response-header": "response_header",
    "response-body": "response_body",
    "saturation-detector": "saturation",
}
"""Kind -> the method that makes a class that kind."""


def plugin_kinds(cls: type[Any]) -> frozenset[str]:
    """Every kind `cls` implements, plus a config-only kind it declares as `config_kind`."""
    kinds = {kind for kind, method in KIND_METHODS.items() if callable(getattr(cls, method, None))}
    config_kind = getattr(cls, "config_kind", None)
    if isinstance(config_kind, str):
        kinds.add(config_kind)
    return frozenset(kinds)


class Plugin(Protocol):
    """Every plugin: a registered kebab-case `type_name`, an instance `name`, one constructor.

    `from_config` validates `params` into the plugin's typed parameter struct (unknown fields
    rejected, defaults in the struct, upstream's camelCase names) and calls the plain `__init__`
    that tests use. It raises `msgspec.ValidationError` or `ValueError` on bad parameters.
    """

    type_name: ClassVar[str]
    name: str

    @classmethod
    def from_config(cls, name: str, params: Mapping[str, Any], handle: PluginHandle) -> Self: ...


class ProfileHandler(Plugin, Protocol):
    """Chooses which profiles run, in rounds, and which result is primary.

    `pick_profiles` is called with the results so far (None = that profile found no endpoint) and
    returns the names to run next, each at most once per cycle; an empty answer ends the loop.
    `process_results` turns the results into a `SchedulingResult` or raises `SchedulingError`.
    """

    def pick_profiles(
        self,
        request: InferenceRequest,
        state: CycleState,
        profiles: Sequence[str],
        results: Mapping[str, ProfileResult | None],
    ) -> Sequence[str]: ...

    def process_results(
        self,
        request: InferenceRequest,
        state: CycleState,
        results: Mapping[str, ProfileResult | None],
    ) -> SchedulingResult: ...


class Filter(Plugin, Protocol):
    """Returns the subset of `endpoints` the request may go to, in their original order.

    An empty result ends the profile with "no endpoints available"; filters run in order.
    """

    def filter(
        self, request: InferenceRequest, state: CycleState, endpoints: Sequence[EndpointState]
    ) -> Sequence[EndpointState]: ...


class Scorer(Plugin, Protocol):
    """Returns one score per endpoint, aligned with `endpoints`; higher is better.

    Scores are meant to lie in [0, 1]; the framework clamps anything else (NaN -> 0) and multiplies
    by the profile's weight. An empty list gives an empty list. `category` says whether the scorer
    spreads load (`distribution`) or keeps requests where state is (`affinity`).
    """

    category: ClassVar[Literal["distribution", "affinity"]]

    def score(
        self, request: InferenceRequest, state: CycleState, endpoints: Sequence[EndpointState]
    ) -> Sequence[float]: ...


class Picker(Plugin, Protocol):
    """Chooses the targets from `endpoints` by their weighted total `scores` (aligned).

    Returns between one and `maxNumOfEndpoints` distinct endpoints, best first, for a non-empty
    input, and nothing for an empty one. Ties are broken at random with the handle's RNG.
    """

    def pick(
        self,
        request: InferenceRequest,
        state: CycleState,
        endpoints: Sequence[EndpointState],
        scores: Sequence[float],
    ) -> Sequence[EndpointState]: ...


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
