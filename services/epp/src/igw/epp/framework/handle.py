"""What plugins may use beyond their own parameters; passed in, never global (STYLE §6)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from igw.epp.framework.metrics import SchedulerMetrics

__all__ = ["PluginHandle"]


@dataclass(frozen=True, slots=True)
class PluginHandle:
    metrics: SchedulerMetrics = field(default_factory=SchedulerMetrics)
    rng: random.Random = field(default_factory=random.Random)
    """Every random choice a plugin makes; seed it in tests."""
    clock: Callable[[], float] = time.monotonic
    """The clock `Metrics.updated_at` is read on, for staleness checks."""
