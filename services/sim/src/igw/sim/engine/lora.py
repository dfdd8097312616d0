"""LoRA adapters: which are known, which are resident on the GPU, and what a load costs.

An adapter is *known* once registered (`--lora-modules`, `/v1/load_lora_adapter`). At most
`max_loras` adapters are *resident*. A request for a non-resident adapter can start only if a
slot is free or some resident adapter has no running request; that idle adapter, the least
recently used one, is evicted. The step that starts it pays `lora_load_latency_s` (vLLM loads
adapters synchronously in the model runner, so the whole batch waits for the load). If every
slot runs requests, the request stays in the waiting queue and later requests may pass it, as in
vLLM's scheduler; its adapter shows up in `waiting_lora_adapters`.

An adapter unregistered while requests still run on it stays resident until they finish.
"""

from __future__ import annotations

import enum
from collections import Counter, OrderedDict

from igw.sim.engine.api import AdapterError

__all__ = ["AdapterPlan", "LoraSlots"]


class AdapterPlan(enum.Enum):
    """What starting a request on an adapter would take."""

    READY = "ready"
    """The base model, or a resident adapter."""
    LOAD = "load"
    """A load, into a free slot or in place of an idle adapter."""
    BLOCKED = "blocked"
    """Nothing: every slot holds an adapter with running requests."""


class LoraSlots:
    """Known and resident adapters and their running request counts."""

    def __init__(self, max_loras: int) -> None:
        self.max_loras = max_loras
        self._known: dict[str, None] = {}
        self._resident: OrderedDict[str, None] = OrderedDict()  # least recently used first
        self._running: Counter[str] = Counter()

    def known(self) -> tuple[str, ...]:
        return tuple(self._known)

    def resident(self) -> tuple[str, ...]:
        return tuple(self._resident)

    def running(self) -> tuple[str, ...]:
        """Adapters with at least one running request."""
        return tuple(name for name, count in self._running.items() if count > 0)

    def is_known(self, name: str) -> bool:
        return name in self._known

    def register(self, name: str) -> None:
        if name in self._known:
            raise AdapterError(f"The lora adapter '{name}' has already been loaded.")
        self._known[name] = None

    def unregister(self, name: str) -> None:
        if name not in self._known:
            raise AdapterError(f"The lora adapter '{name}' cannot be found.")
        del self._known[name]
        if self._running[name] == 0:
            self._resident.pop(name, None)

    def has_free_slot(self) -> bool:
        return len(self._resident) < self.max_loras

    def make_resident(self, name: str) -> bool:
        """Takes a free slot for a known adapter (no eviction); False if none is free."""
        if name in self._resident:
            return True
        if name not in self._known or not self.has_free_slot():
            return False
        self._resident[name] = None
        return True

    def plan(self, name: str | None) -> AdapterPlan:
        if name is None or name in self._resident:
            return AdapterPlan.READY
        if self.has_free_slot() or self._idle_victim() is not None:
            return AdapterPlan.LOAD
        return AdapterPlan.BLOCKED

    def acquire(self, name: str | None) -> bool:
        """Starts a request on `name` (its plan must not be BLOCKED); True if it loaded now."""
        if name is None:
            return False
        loaded = name not in self._resident
        if loaded and not self.has_free_slot():
            victim = self._idle_victim()
            if victim is None:
                raise RuntimeError(f"no slot for adapter {name!r}: plan() said BLOCKED")
            del self._resident[victim]
        self._resident[name] = None
        self._resident.move_to_end(name)
        self._running[name] += 1
        return loaded

    def release(self, name: str | None) -> None:
        """A request on `name` stopped running (finished, cancelled or preempted)."""
        if name is None:
            return
        self._running[name] -= 1
        if self._running[name] <= 0:
            del self._running[name]
            if name not in self._known:
                self._resident.pop(name, None)

    def _idle_victim(self) -> str | None:
        for name in self._resident:
            if self._running[name] == 0:
                return name
        return None
