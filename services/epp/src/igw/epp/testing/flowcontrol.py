"""Test doubles for flow control: a saturation detector a test drives, and a controller builder.

`BudgetSaturation` reports the pool saturated (1.0) unless it has dispatch budget left: each
call with budget spends one unit and reports 0.0. The dispatcher asks once per cycle and
dispatches exactly one request per unsaturated cycle with something queued, so a budget of n
lets exactly n requests through, in the order the policies choose: deterministic, no timing.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from prometheus_client import CollectorRegistry

from igw.epp.config import load_config
from igw.epp.endpoints import EndpointSource, EndpointState, InferenceRequest
from igw.epp.flowcontrol import (
    EvictionConfig,
    FlowController,
    FlowControlMetrics,
    InFlight,
    flow_controller,
)
from igw.epp.flowcontrol.plugins import FcfsOrderingPolicy
from igw.epp.flowcontrol.queue import FlowQueue, QueueItem
from igw.epp.framework import PluginHandle
from igw.epp.framework.flowcontrol import OrderingPolicy
from igw.epp.framework.requestcontrol import SaturationDetector
from igw.epp.requestpath import Director, RequestMetrics
from igw.epp.testing.builders import FakeClock, seeded
from igw.epp.testing.requestpath import StaticEndpoints, director_for

__all__ = [
    "BudgetSaturation",
    "build_controller",
    "flow_control_config",
    "flow_controlled_director",
    "flows",
    "queued",
]


class BudgetSaturation:
    """A `SaturationDetector` a test drives (module docstring)."""

    type_name: ClassVar[str] = "budget-saturation-detector"

    def __init__(self, budget: int = 0, *, name: str = "budget") -> None:
        self.name = name
        self.budget = budget
        self.calls = 0

    @classmethod
    def from_config(cls, name: str, params: Mapping[str, Any], handle: object) -> Self:  # noqa: ARG003 - protocol
        return cls(name=name)

    def saturation(self, endpoints: Sequence[EndpointState]) -> float:  # noqa: ARG002 - driven
        self.calls += 1
        if self.budget > 0:
            self.budget -= 1
            return 0.0
        return 1.0


def flow_control_config(flow_control: str = "{}", plugins: str = "[]") -> str:
    """An EndpointPickerConfig with the gate on and this `flowControl` block (YAML flow style)."""
    return (
        "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n"
        f"featureGates: [flowControl]\nplugins: {plugins}\nflowControl: {flow_control}\n"
    )


def build_controller(
    flow_control: str = "{}",
    *,
    plugins: str = "[]",
    detector: SaturationDetector | None = None,
    source: EndpointSource | None = None,
    clock: FakeClock | None = None,
    poll_s: float = 0.05,
    flow_gc_s: float = 300.0,
    band_gc_s: float = 600.0,
    eviction: EvictionConfig | None = None,
) -> FlowController:
    """A controller over a loaded `flowControl` block, not started, with its own registry."""
    config = load_config(flow_control_config(flow_control, plugins))
    fc = config.flow_control
    eviction = eviction or fc.eviction
    return FlowController(
        fc, config.plugins,
        detector=detector if detector is not None else BudgetSaturation(),
        source=source if source is not None else StaticEndpoints(),
        metrics=FlowControlMetrics(CollectorRegistry()), pool_name="pool",
        clock=clock or FakeClock(), poll_s=poll_s, flow_gc_s=flow_gc_s, band_gc_s=band_gc_s,
        in_flight=InFlight(eviction) if eviction is not None else None,
    )  # fmt: skip


def flow_controlled_director(
    states: Sequence[EndpointState] = (),
    *,
    flow_control: str = "{}",
    plugins: str = "[]",
    objectives: Mapping[str, int] | None = None,
    clock: FakeClock | None = None,
) -> tuple[Director, FlowController, StaticEndpoints]:
    """A Director whose admission is flow control over `states` (the configured
    `utilization-detector` on a fake clock), as `EppService` wires it with the gate on; the
    controller is not started."""
    clock = clock or FakeClock()
    handle = PluginHandle(rng=seeded(), clock=clock)
    config = load_config(flow_control_config(flow_control, plugins), handle=handle)
    source = StaticEndpoints(states)
    controller = flow_controller(
        config.flow_control, config.plugins, detector=config.saturation_detector,
        source=source, registry=handle.metrics.registry, pool_name="pool", clock=clock,
    )  # fmt: skip
    config.request_control.use_admission(controller)
    metrics = RequestMetrics(handle.metrics.registry)
    director = director_for(config, source, objectives=objectives, metrics=metrics)
    return director, controller, source


_seq = itertools.count()


def queued(
    fairness_id: str = "f",
    *,
    at: float = 0.0,
    ttl: float = 0.0,
    size: int = 1,
    headers: Mapping[str, str] | None = None,
) -> QueueItem:
    """A queue item as the controller makes it (enqueued `at`, with a TTL and a size)."""
    request = InferenceRequest("r", "m", dict(headers or {}), fairness_id=fairness_id)
    labels = (fairness_id, "0", "pool", "m", "m")
    return QueueItem(request, 0, fairness_id, size, at, ttl, next(_seq), labels)


def flows(
    backlog: Mapping[str, int], ordering: OrderingPolicy | None = None, size: int = 1
) -> dict[str, FlowQueue]:
    """Flows with `backlog[id]` requests each, for the fairness policies to pick from."""
    made = {}
    for fairness_id, n in backlog.items():
        flow = FlowQueue(fairness_id, ordering or FcfsOrderingPolicy(), 0.0)
        for i in range(n):
            flow.push(queued(fairness_id, at=float(i), size=size))
        made[fairness_id] = flow
    return made
