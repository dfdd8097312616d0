"""Adapter residency: which LoRA adapters each endpoint most likely holds in its GPU slots.

A model server keeps at most `max_lora` adapters loaded and evicts the least recently used
(vLLM's `max_loras`). Its metrics (`vllm:lora_requests_info`) name only the adapters with running
or waiting requests, so an adapter used a second ago and idle now is invisible there, yet still
loaded. This table replays the LRU from what the EPP sees: every adapter it sends to an endpoint
and every adapter a scrape names there is touched; the `max_lora` most recently touched are
taken as resident. An adapter that is not resident costs a load there; when every slot holds an
adapter with running requests, the load must also wait for one of them to drain (`blocked`).

A model name counts as an adapter once any scrape has named it (the base model never appears in
`lora_requests_info`); before that, no endpoint is charged for it, so all rank equal.
"""

from __future__ import annotations

import collections
from typing import Literal

from igw.epp.endpoints import EndpointState

__all__ = ["AdapterSlots", "Residency"]

Residency = Literal["resident", "load", "blocked", "none"]
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

    def residency(self, state: EndpointState, model: str) -> Residency:
        capacity = state.metrics.max_active_models
        if capacity <= 0 or model not in self.adapters:
            return "none"
        lru = self._lru.get(state.endpoint.name)
        recent = list(lru)[-capacity:] if lru else []
        if model in recent:
            return "resident"
        running = state.metrics.active_models
        if len(recent) >= capacity and all(a in running for a in recent):
            return "blocked"
        return "load"
