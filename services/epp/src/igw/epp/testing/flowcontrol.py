"""Test doubles for flow control: a saturation detector a test drives, and a controller builder.

`BudgetSaturation` reports the pool saturated (1.0) unless it has dispatch budget left: each
call with budget spends one unit and reports 0.0. The dispatcher asks once per cycle and
dispatches exactly one request per unsaturated cycle with something queued, so a budget of n
lets exactly n requests through, in the order the policies choose: deterministic, no timing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from prometheus_client import CollectorRegistry

from igw.epp.config import load_config
from igw.epp.endpoints import EndpointSource, EndpointState
from igw.epp.flowcontrol import EvictionConfig, FlowController, FlowControlMetrics, InFlight
from igw.epp.framework.requestcontrol import SaturationDetector
from igw.epp.testing.builders import FakeClock
from igw.epp.testing.requestpath import StaticEndpoints

__all__ = ["BudgetSaturation", "build_controller", "flow_control_config"]


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
