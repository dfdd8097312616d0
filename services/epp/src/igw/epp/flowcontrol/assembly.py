"""Builds the `FlowController` of a loaded configuration, over the pool's endpoints."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from igw.epp.endpoints import EndpointSource
from igw.epp.flowcontrol.config import FlowControlConfig
from igw.epp.flowcontrol.controller import FlowController
from igw.epp.flowcontrol.eviction import InFlight
from igw.epp.flowcontrol.metrics import FlowControlMetrics
from igw.epp.framework.requestcontrol import SaturationDetector

__all__ = ["flow_controller"]


def flow_controller(
    config: FlowControlConfig,
    plugins: Mapping[str, Any],
    *,
    detector: SaturationDetector,
    source: EndpointSource,
    registry: CollectorRegistry,
    pool_name: str,
    clock: Callable[[], float] = time.monotonic,
) -> FlowController:
    """`plugins` are the configuration's instances by name (the policies are among them)."""
    return FlowController(
        config, plugins, detector=detector, source=source,
        metrics=FlowControlMetrics(registry), pool_name=pool_name, clock=clock,
        in_flight=InFlight(config.eviction) if config.eviction is not None else None,
    )  # fmt: skip
