"""The data-layer plugin types the config names (`metrics-data-source`, `core-metrics-extractor`):
their typed parameters and the `dataLayer` section resolved into what the data layer consumes.

These plugins do no scheduling work; the config loader validates them and hands the resolved
`DataLayerConfig` to the data layer (`igw.epp.datalayer.assembly` builds the datastore from it).
Validation happens at load time, so a bad config never starts: each plugin builds its runtime
counterpart once (the extractor compiles every metric spec; the source checks its path).

An omitted `dataLayer` section means one source, the plugin named `metrics-data-source`, with the
extractor named `core-metrics-extractor`: the instances of those names in `plugins` when present
(with their parameters), else defaults, as upstream resolves them by name. `sources: []` turns
collection off, as upstream. What the data layer cannot honour is refused with the field's path:
more than one source (there is one data-source type, the metrics scraper, and upstream's
multi-source merging has no use with one type), and a source without exactly one extractor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self

import msgspec

from igw.epp.config.errors import ConfigError
from igw.epp.datalayer import engines, scraper
from igw.epp.endpoints import ENGINE_TYPE_LABEL
from igw.epp.scheduling.handle import PluginHandle
from igw.epp.scheduling.plugins._params import decode_params

__all__ = [
    "BUILTIN_ENGINES",
    "CoreMetricsExtractor",
    "CoreMetricsExtractorParams",
    "DataLayerConfig",
    "DataSourceConfig",
    "EngineConfig",
    "ExtractorConfig",
    "MetricsDataSource",
    "MetricsDataSourceParams",
]

BUILTIN_ENGINES = ("vllm", "sglang", "trtllm-serve", "triton-tensorrt-llm")


class MetricsDataSourceParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    scheme: Literal["http", "https"] = "http"
    path: str = "/metrics"
    insecureSkipVerify: bool = True  # noqa: N815 - the upstream parameter name


class EngineConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One engine's metric specs (PromQL selectors); replaces a built-in engine entirely.
    An omitted or empty spec disables that metric."""

    name: str
    queuedRequestsSpec: str = ""  # noqa: N815 - upstream's field names
    runningRequestsSpec: str = ""  # noqa: N815
    kvUsageSpec: str = ""  # noqa: N815
    loraSpec: str = ""  # noqa: N815
    cacheInfoSpec: str = ""  # noqa: N815
    cacheBlockSizeSpec: str = ""  # noqa: N815
    cacheNumBlocksSpec: str = ""  # noqa: N815


class CoreMetricsExtractorParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    engineLabelKey: str = ENGINE_TYPE_LABEL  # noqa: N815 - upstream's parameter names
    defaultEngine: str = "vllm"  # noqa: N815
    engineConfigs: tuple[EngineConfig, ...] = ()  # noqa: N815


class MetricsDataSource:
    """`metrics-data-source`: HTTP GET of each endpoint's Prometheus page."""

    type_name: ClassVar[str] = "metrics-data-source"
    config_kind: ClassVar[str] = "data-source"

    def __init__(self, name: str = type_name, params: MetricsDataSourceParams | None = None):
        self.name = name
        self.params = params if params is not None else MetricsDataSourceParams()
        self.runtime_params = runtime_source_params(self.params)
        """What the scraper takes; building it checks the path (raises `ValueError`)."""

    @classmethod
    def from_config(
        cls,
        name: str,
        params: Mapping[str, Any],
        handle: PluginHandle,  # noqa: ARG003 - protocol
    ) -> Self:
        return cls(name, decode_params(params, MetricsDataSourceParams))


class CoreMetricsExtractor:
    """`core-metrics-extractor`: maps each engine's metric families to endpoint metrics."""

    type_name: ClassVar[str] = "core-metrics-extractor"
    config_kind: ClassVar[str] = "data-extractor"

    def __init__(self, name: str = type_name, params: CoreMetricsExtractorParams | None = None):
        params = params if params is not None else CoreMetricsExtractorParams()
        names = [e.name for e in params.engineConfigs]
        if len(set(names)) != len(names):
            raise ValueError(f"engineConfigs names must be unique: {names}")
        if params.defaultEngine not in (*BUILTIN_ENGINES, *names):
            raise ValueError(
                f"defaultEngine {params.defaultEngine!r} is neither a built-in engine "
                f"({', '.join(BUILTIN_ENGINES)}) nor in engineConfigs"
            )
        self.name = name
        self.params = params
        self.extractor = runtime_extractor(params)
        """The data layer's extractor; building it compiles every metric spec."""

    @classmethod
    def from_config(
        cls,
        name: str,
        params: Mapping[str, Any],
        handle: PluginHandle,  # noqa: ARG003 - protocol
    ) -> Self:
        return cls(name, decode_params(params, CoreMetricsExtractorParams))


@dataclass(frozen=True, slots=True)
class ExtractorConfig:
    name: str
    params: CoreMetricsExtractorParams


@dataclass(frozen=True, slots=True)
class DataSourceConfig:
    name: str
    params: MetricsDataSourceParams
    extractors: tuple[ExtractorConfig, ...]


def runtime_source_params(params: MetricsDataSourceParams) -> scraper.MetricsDataSourceParams:
    """The scraper's parameters; raises `ValueError` for a path it cannot request."""
    return scraper.MetricsDataSourceParams(
        scheme=params.scheme, path=params.path, insecure_skip_verify=params.insecureSkipVerify
    )


def runtime_extractor(params: CoreMetricsExtractorParams) -> engines.CoreMetricsExtractor:
    """The data layer's extractor; raises `ValueError` naming a bad engine or metric spec."""
    # Both structs carry upstream's field names on the wire, so the builtins form maps across.
    return engines.CoreMetricsExtractor.from_params(msgspec.to_builtins(params))


@dataclass(frozen=True, slots=True)
class DataLayerConfig:
    sources: tuple[DataSourceConfig, ...] = field(
        default_factory=lambda: (
            DataSourceConfig(
                MetricsDataSource.type_name,
                MetricsDataSourceParams(),
                (ExtractorConfig(CoreMetricsExtractor.type_name, CoreMetricsExtractorParams()),),
            ),
        )
    )
    """Empty: metrics collection is off."""

    def __post_init__(self) -> None:
        if len(self.sources) > 1:
            raise ConfigError(
                "dataLayer.sources[1]",
                f"source {self.sources[1].name!r}: only one data source is supported (the "
                f"metrics scraper, {self.sources[0].name!r}); got {len(self.sources)}",
            )
        for i, source in enumerate(self.sources):
            if len(source.extractors) != 1:
                raise ConfigError(
                    f"dataLayer.sources[{i}].extractors",
                    f"source {source.name!r} needs exactly one extractor (a "
                    f"core-metrics-extractor); got {len(source.extractors)}",
                )
