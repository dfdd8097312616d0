"""Test doubles for the request path: fixed endpoint sources, and a Director and the exchanges
around it built from a config.

`build_director` wires what `EppService` wires (config with its legacy admission, parser,
metrics) around an in-memory `StaticEndpoints`, with seeded randomness and the builders' fake
clock, so tests of the director see deterministic picks; `build_exchanges` adds the per-stream
exchange factory on top, for tests of the ext_proc exchange.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from igw.common.envoy import BodyMode, ProcessingRequest
from igw.common.errors import InferenceError
from igw.common.extproc import Stream, StreamInfo
from igw.common.testing import messages
from igw.common.testing.messages import ReplyView
from igw.epp.config import EppConfig, load_config
from igw.epp.endpoints import EndpointSource, EndpointState
from igw.epp.framework import PluginHandle
from igw.epp.framework.parsing import Parser
from igw.epp.requestcontrol import RequestControl
from igw.epp.requestpath import (
    Director,
    Exchanges,
    ModelRewrites,
    Objectives,
    RequestMetrics,
    StaticObjectives,
)
from igw.epp.testing.builders import FakeClock, seeded

__all__ = [
    "CHAT_BODY",
    "CHAT_HEADERS",
    "FreshEndpoints",
    "StaticEndpoints",
    "build_director",
    "build_exchanges",
    "director_for",
    "request_error",
    "run_request",
]

CHAT_HEADERS: Mapping[str, str] = {
    ":method": "POST", ":path": "/v1/chat/completions", "content-type": "application/json",
}  # fmt: skip
CHAT_BODY = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})


class StaticEndpoints:
    """An `EndpointSource` whose list a test sets directly."""

    def __init__(self, states: Sequence[EndpointState] = ()) -> None:
        self.states: tuple[EndpointState, ...] = tuple(states)

    def endpoints(self) -> tuple[EndpointState, ...]:
        return self.states


class FreshEndpoints(StaticEndpoints):
    """`StaticEndpoints` whose metrics read as scraped just now (`updated_at` = the clock).

    For tests through a real gateway on the real clock: the saturation detector treats metrics
    older than 200 ms as saturated, and a loaded machine can take that long between setting the
    states and the request's admission; a live datastore rescrapes every 50 ms.
    """

    def __init__(
        self, states: Sequence[EndpointState] = (), *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(states)
        self.clock = clock

    def endpoints(self) -> tuple[EndpointState, ...]:
        now = self.clock()
        return tuple(
            dataclasses.replace(s, metrics=dataclasses.replace(s.metrics, updated_at=now))
            for s in self.states
        )


def build_director(
    states: Sequence[EndpointState] = (),
    *,
    config: str | None = None,
    parser: Parser | None = None,
    objectives: Mapping[str, int] | Objectives | None = None,
    rewrites: ModelRewrites | None = None,
    subset_filter: bool = True,
    request_control: RequestControl | None = None,
) -> Director:
    handle = PluginHandle(rng=seeded(), clock=FakeClock())
    loaded = load_config(config, handle=handle)
    return director_for(
        loaded, StaticEndpoints(states), parser=parser, objectives=objectives, rewrites=rewrites,
        subset_filter=subset_filter, request_control=request_control,
        metrics=RequestMetrics(handle.metrics.registry),
    )  # fmt: skip


def director_for(
    config: EppConfig,
    source: EndpointSource,
    *,
    parser: Parser | None = None,
    objectives: Mapping[str, int] | Objectives | None = None,
    rewrites: ModelRewrites | None = None,
    subset_filter: bool = True,
    request_control: RequestControl | None = None,
    metrics: RequestMetrics | None = None,
) -> Director:
    """A Director over `source` with a loaded config's scheduler, hooks and parser."""
    return Director(
        source=source,
        scheduler=config.scheduler,
        request_control=request_control or config.request_control,
        parser=parser or config.parser,
        metrics=metrics or RequestMetrics(),
        objectives=(
            StaticObjectives(objectives) if isinstance(objectives, Mapping | None) else objectives
        ),
        rewrites=rewrites,
        subset_filter=subset_filter,
        rng=seeded(1),
    )


def build_exchanges(
    director: Director,
    *,
    response_sample_rate: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    follow_responses: bool = False,
) -> Exchanges:
    """The exchange factory around `director`, sharing its hooks, parser and metrics."""
    return Exchanges(
        director, director.request_control, director.parser, director.metrics,
        response_sample_rate=response_sample_rate, rng=seeded(2), clock=clock,
        follow_responses=follow_responses,
    )  # fmt: skip


async def run_request(
    director: Director,
    headers: Mapping[str, str] = CHAT_HEADERS,
    body: bytes | None = CHAT_BODY,
    *,
    metadata: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[ReplyView]:
    """Every reply the ext_proc core sends for one request through `director` (full duplex;
    `body` None = a header-only request); an error answer raises its `InferenceError`."""
    duplex = BodyMode.FULL_DUPLEX_STREAMED
    stream = Stream(build_exchanges(director)(StreamInfo(span=None)), duplex, duplex)
    sent: list[ProcessingRequest] = [
        messages.request_headers(headers, end_of_stream=body is None, metadata=metadata)
    ]
    if body is not None:
        sent.append(messages.request_body(body, end_of_stream=True))
    replies: list[ReplyView] = []
    for message in sent:
        replies.extend(messages.describe_all(await stream.handle(message)))
    return replies


async def request_error(director: Director, **kwargs: Any) -> tuple[int, str]:
    """The status and body of the error answer `run_request(director, **kwargs)` gets."""
    try:
        await run_request(director, **kwargs)
    except InferenceError as e:
        return e.status, e.body()
    raise AssertionError("the request was not refused")
