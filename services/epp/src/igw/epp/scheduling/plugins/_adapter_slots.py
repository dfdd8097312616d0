"""Adapter residency: which LoRA adapters each endpoint most likely holds in its GPU slots.

A model server keeps at most `max_lora` adapters loaded and evicts the least recently used
(vLLM's `max_loras`). Its metrics (`vllm:lora_requests_info`) name only the adapters with
running or waiting requests, so an adapter used a second ago and idle now is invisible there,
yet still loaded. This table replays the LRU from what the EPP sees: every adapter it sends to
an endpoint and every adapter a scrape names there is touched; the `max_lora` most recently
touched are taken as resident. An adapter that is not resident costs a load there; when every
slot holds an adapter with running requests, the load must also wait for one of them to drain
(`blocked`). A load into full slots evicts the least recently used idle adapter; when no other
candidate endpoint holds that one, the load is an `evict`: a later request for the evicted
adapter will have to load it back somewhere, so the load costs more there than on an endpoint
whose victim has other copies. Keeping the pool's only copies in place is what lets a fleet with
few slots per pod keep most adapters resident somewhere.

A model name counts as an adapter once any scrape has named it (the base model never appears in
`lora_requests_info`); before that, no endpoint is charged for it, so all rank equal.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Literal

from igw.epp.endpoints import EndpointState

__all__ = ["AdapterSlots", "Residency"]

Residency = Literal["resident", "load", "evict", "blocked", "none"]
"""`none`: the model is not (known as) an adapter, or the endpoint serves no adapters."""


class AdapterSlots:
    """See the module docstring; one per plugin instance, event loop only."""

    def __init__(self) -> None:
        self._lru: dict[str, collections.OrderedDict[str, None]] = {}
        self._seen: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
        self.adapters: set[str] = set()
        """Model names some endpoint reported as adapters."""

    def _touch(self, endpoint: str, adapter: str) -> None:
        lru = self._lru.get(endpoint)
        if lru is None:
            lru = self._lru[endpoint] = collections.OrderedDict()
        lru[adapter] = None
        lru.move_to_end(adapter)
        while len(lru) > 64:  # far beyond any max_lora: forget the oldest
            lru.popitem(last=False)

    def observe(self, state: EndpointState) -> None:
        """Touches the adapters the endpoint's latest scrape names (once per new set)."""
        m = state.metrics
        if not m.active_models and not m.waiting_models:
            return
        name = state.endpoint.name
        seen = (m.active_models, m.waiting_models)
        if self._seen.get(name) == seen:
            return
        self._seen[name] = seen
        for adapter in (*sorted(m.waiting_models), *sorted(m.active_models)):
            self.adapters.add(adapter)
            self._touch(name, adapter)

    def sent(self, endpoint: str, model: str) -> None:
        """A request for `model` went to `endpoint`."""
        if model in self.adapters:
            self._touch(endpoint, model)

    def _held(self, state: EndpointState) -> list[str] | None:
        """The adapters the endpoint most likely holds, least recently used first; None when it
        serves none."""
        capacity = state.metrics.max_active_models
        if capacity <= 0:
            return None
        lru = self._lru.get(state.endpoint.name)
        return list(lru)[-capacity:] if lru else []

    def residency(self, state: EndpointState, model: str) -> Residency:
        """`model`'s residency at one endpoint, without the pool's view (never `evict`)."""
        return self.residencies((state,), model)[0] if model in self.adapters else "none"

    def residencies(self, endpoints: Sequence[EndpointState], model: str) -> list[Residency]:
        """`model`'s residency at each endpoint (module docstring)."""
        if model not in self.adapters:
            return ["none"] * len(endpoints)
        held = [self._held(e) for e in endpoints]
        copies = collections.Counter(a for h in held if h for a in h)
        out: list[Residency] = []
        for e, h in zip(endpoints, held, strict=True):
            if h is None:
                out.append("none")
            elif model in h:
                out.append("resident")
            elif len(h) < e.metrics.max_active_models:
                out.append("load")
            else:
                running = e.metrics.active_models
                victim = next((a for a in h if a not in running), None)
                if victim is None:
                    out.append("blocked")
                else:
                    out.append("evict" if copies[victim] == 1 and len(endpoints) > 1 else "load")
        return out
