"""Phase: data producers. Auto-creates the default producer of every attribute a configured
plugin consumes and nobody produces, then orders producers so each runs after those whose
attributes it consumes (a cycle is an error).

Parameters given to `prefix-cache-scorer` (ignored upstream, §13 #8) go to the
`approx-prefix-cache-producer` auto-created for it; with an explicitly configured producer they
are an error, so the block size is set in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from igw.epp.config._build import Build
from igw.epp.config.builtin import DEFAULT_PRODUCERS
from igw.epp.config.errors import ConfigError
from igw.epp.framework import Plugin, kinds
from igw.epp.framework.requestcontrol import DataProducer
from igw.epp.scheduling.plugins import ApproxPrefixCacheProducer, PrefixCacheScorer

__all__ = ["order_producers"]


def _keys(plugin: Plugin, attribute: str) -> set[str]:
    return {key.name for key in getattr(plugin, attribute, ())}


def _auto_create(build: Build) -> None:
    produced = set().union(*(_keys(p, "produces") for p in build.of_kind(kinds.DATA_PRODUCER)))
    forwarded = _scorer_params(build)
    for consumer in list(build.instances.values()):
        for key in sorted(_keys(consumer, "consumes") - produced):
            producer_type = DEFAULT_PRODUCERS.get(key)
            if producer_type is None:
                raise ConfigError(
                    "plugins",
                    f"plugin {consumer.name!r} consumes {key!r}, which no plugin produces",
                )
            if producer_type in build.instances:
                raise ConfigError(
                    "plugins",
                    f"plugin {consumer.name!r} needs a {producer_type} but that name is taken "
                    "by another plugin type",
                )
            params: Mapping[str, Any] = {}
            if producer_type == ApproxPrefixCacheProducer.type_name:
                params, forwarded = forwarded or {}, None
            build.create(producer_type, producer_type, params or {}, "plugins")
            produced |= {key} | _keys(build.instances[producer_type], "produces")
    if forwarded:
        raise ConfigError(
            "plugins",
            "prefix-cache-scorer has parameters, but an approx-prefix-cache-producer is "
            "configured: set them on the producer instead",
        )


def _scorer_params(build: Build) -> Mapping[str, Any] | None:
    for p in build.instances.values():
        if isinstance(p, PrefixCacheScorer) and p.producer_params:
            return p.producer_params
    return None


def order_producers(build: Build) -> list[DataProducer]:
    """Every producer, dependencies first; configuration order breaks ties."""
    _auto_create(build)
    producers = build.of_kind(kinds.DATA_PRODUCER)
    providers = {
        key: [q for q in producers if key in _keys(q, "produces")]
        for p in producers
        for key in _keys(p, "consumes")
    }
    ordered: list[DataProducer] = []
    state: dict[str, str] = {}

    def visit(p: DataProducer, chain: tuple[str, ...]) -> None:
        if state.get(p.name) == "done":
            return
        if state.get(p.name) == "visiting":
            cycle = " -> ".join((*chain, p.name))
            raise ConfigError("plugins", f"data producers depend on each other in a cycle: {cycle}")
        state[p.name] = "visiting"
        for key in sorted(_keys(p, "consumes")):
            for dependency in providers.get(key, []):
                visit(dependency, (*chain, p.name))
        state[p.name] = "done"
        ordered.append(p)

    for p in producers:
        visit(p, ())
    return ordered
