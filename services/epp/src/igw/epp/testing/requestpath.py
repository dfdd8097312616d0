"""Test doubles for the request path: a fixed endpoint source and a Director built from a config.

`build_director` wires what `EppService` wires (config, legacy admission, parser, metrics) around
an in-memory `StaticEndpoints`, with seeded randomness and the builders' fake clock, so tests of
the director and of the ext_proc exchange see deterministic picks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from igw.epp.config import load_config
from igw.epp.endpoints import EndpointState
from igw.epp.parsers import OpenAIParser, Parser
from igw.epp.requestpath import Director, RequestMetrics, StaticObjectives
from igw.epp.scheduling import LegacyAdmission, PluginHandle, RequestControl
from igw.epp.testing.builders import FakeClock, seeded

__all__ = ["StaticEndpoints", "build_director"]


class StaticEndpoints:
    """An `EndpointSource` whose list a test sets directly."""

    def __init__(self, states: Sequence[EndpointState] = ()) -> None:
        self.states: tuple[EndpointState, ...] = tuple(states)

    def endpoints(self) -> tuple[EndpointState, ...]:
        return self.states


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
