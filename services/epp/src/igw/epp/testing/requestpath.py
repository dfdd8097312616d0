"""Test doubles for the request path: fixed endpoint sources and a Director built from a config.

`build_director` wires what `EppService` wires (config, legacy admission, parser, metrics) around
an in-memory `StaticEndpoints`, with seeded randomness and the builders' fake clock, so tests of
the director and of the ext_proc exchange see deterministic picks.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence

from igw.epp.config import load_config
from igw.epp.endpoints import EndpointState
from igw.epp.parsers import OpenAIParser, Parser
from igw.epp.requestpath import Director, RequestMetrics, StaticObjectives
from igw.epp.scheduling import LegacyAdmission, PluginHandle, RequestControl
from igw.epp.testing.builders import FakeClock, seeded

__all__ = ["FreshEndpoints", "StaticEndpoints", "build_director"]


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
    objectives: Mapping[str, int] | None = None,
    subset_filter: bool = True,
    request_control: RequestControl | None = None,
) -> Director:
    handle = PluginHandle(rng=seeded(), clock=FakeClock())
    loaded = load_config(config, handle=handle, registry=None)
    return Director(
        source=StaticEndpoints(states),
        scheduler=loaded.scheduler,
        request_control=request_control or loaded.request_control,
        admission=LegacyAdmission(loaded.saturation_detector),
        parser=parser or OpenAIParser(),
        metrics=RequestMetrics(handle.metrics.registry),
        objectives=StaticObjectives(objectives),
        subset_filter=subset_filter,
        rng=seeded(1),
    )
