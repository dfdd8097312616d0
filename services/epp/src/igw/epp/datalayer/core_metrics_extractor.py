"""`core-metrics-extractor`: each endpoint's engine mapping, chosen by the endpoint's engine label.

An endpoint's engine is the value of its `engineLabelKey` label
(`inference.networking.k8s.io/engine-type`), else `defaultEngine` (`vllm`); an unknown value falls
back to the default engine with a warning. A user `engineConfigs` entry replaces the built-in
engine of the same name entirely (`igw.epp.datalayer.engines` has the built-in table and the
rules of a mapping); names must be unique, and `defaultEngine` must name a built-in or configured
engine. Every metric spec is compiled when the plugin is built, so a bad one stops the EPP at
start-up with the spec named.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import structlog

from igw.epp.datalayer.engines import BUILTIN_ENGINES, KV_FALLBACKS, EngineConfig, EngineMapping
from igw.epp.datalayer.scanner import SelectorError
from igw.epp.endpoints import ENGINE_TYPE_LABEL, Endpoint, Metrics
from igw.epp.framework.handle import PluginHandle
from igw.epp.framework.params import Params, decode_params

__all__ = ["CoreMetricsExtractor", "CoreMetricsExtractorParams", "EngineReader"]

_log = structlog.get_logger(__name__)


class CoreMetricsExtractorParams(Params, frozen=True):
    """The `core-metrics-extractor` plugin's parameters."""

    engine_label_key: str = ENGINE_TYPE_LABEL
    default_engine: str = "vllm"
    engine_configs: tuple[EngineConfig, ...] = ()


def _fallbacks(engine: str, config: EngineConfig) -> tuple[str, ...]:
    """The older KV spellings of a built-in engine; a user's entry has none."""
    return tuple(KV_FALLBACKS.get(engine, ())) if config is BUILTIN_ENGINES.get(engine) else ()


class EngineReader:
    """One endpoint's `MetricsReader`: its engine's mapping and the scan hints of its pages."""

    __slots__ = ("_hints", "mapping")

    def __init__(self, mapping: EngineMapping) -> None:
        self.mapping = mapping
        self._hints = mapping.new_hints()

    def extract(self, body: bytes, previous: Metrics, now: float) -> tuple[Metrics, list[str]]:
        return self.mapping.extract(body, previous, now, self._hints)


class CoreMetricsExtractor:
    """Chooses and caches each engine's `EngineMapping`; one per EPP, shared by all collectors."""

    type_name: ClassVar[str] = "core-metrics-extractor"

    def __init__(
        self,
        engines: Mapping[str, EngineConfig] = BUILTIN_ENGINES,
        *,
        name: str = type_name,
        engine_label_key: str = ENGINE_TYPE_LABEL,
        default_engine: str = "vllm",
    ) -> None:
        if default_engine not in engines:
            raise ValueError(
                f"defaultEngine {default_engine!r} is neither a built-in engine nor in "
                f"engineConfigs (known: {', '.join(sorted(engines))})"
            )
        self.name = name
        self.engine_label_key = engine_label_key
        self.default_engine = default_engine
        self._mappings = {
            engine: EngineMapping.compile(config, _fallbacks(engine, config))
            for engine, config in engines.items()
        }

    @classmethod
    def from_config(
        cls,
        name: str,
        params: Mapping[str, Any],
        handle: PluginHandle,  # noqa: ARG003 - the protocol's; nothing to take from it
    ) -> Self:
        """Raises `msgspec.ValidationError` for a bad field, `ValueError` for a bad engine table
        or metric spec (naming it)."""
        p = decode_params(params, CoreMetricsExtractorParams)
        engines = dict(BUILTIN_ENGINES)
        names = [config.name for config in p.engine_configs]
        if len(set(names)) != len(names):
            raise ValueError(f"engineConfigs names must be unique: {names}")
        engines.update((config.name, config) for config in p.engine_configs)
        try:
            return cls(
                engines, name=name, engine_label_key=p.engine_label_key,
                default_engine=p.default_engine,
            )  # fmt: skip
        except SelectorError as exc:
            raise ValueError(str(exc)) from None

    def mapping_for(self, endpoint: Endpoint) -> EngineMapping:
        """The mapping for an endpoint's engine label; unknown engines get the default one."""
        engine = endpoint.labels.get(self.engine_label_key) or self.default_engine
        mapping = self._mappings.get(engine)
        if mapping is None:
            _log.warning(
                "epp.datalayer.unknown_engine", endpoint=endpoint.name, engine=engine,
                using=self.default_engine, known=sorted(self._mappings),
            )  # fmt: skip
            return self._mappings[self.default_engine]
        return mapping

    def reader_for(self, endpoint: Endpoint) -> EngineReader:
        return EngineReader(self.mapping_for(endpoint))
