"""The flow-control kinds: fairness, ordering and usage-limit policies.

Flow control (queues per priority band and flow, fairness between flows, ordering within one)
is not built yet: a policy is known by its type name and parameters so that configurations using
upstream's policies load and are validated, and `flowControl` band references are checked against
the kind. A policy declares its kind in `declared_kinds` until it has behaviour to call.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from igw.epp.framework.plugin import Plugin

__all__ = ["FairnessPolicy", "OrderingPolicy", "UsageLimitPolicy"]


class FairnessPolicy(Plugin, Protocol):
    """Chooses which flow of a priority band dispatches next."""

    declared_kinds: ClassVar[tuple[str, ...]]


class OrderingPolicy(Plugin, Protocol):
    """Orders the requests queued in one flow."""

    declared_kinds: ClassVar[tuple[str, ...]]


class UsageLimitPolicy(Plugin, Protocol):
    """Caps how full the pool may get before requests wait."""

    declared_kinds: ClassVar[tuple[str, ...]]
