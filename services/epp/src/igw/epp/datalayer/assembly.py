"""The datastore a loaded config asks for: its `dataLayer` section, resolved, turned into a
running part.

`igw.epp.config` resolves the section into a `DataLayerConfig`: the plugin instances of the one
source and its one extractor (or none: collection off), validated and built at load time.
`source_overrides` are upstream's deprecated flags `--model-server-metrics-scheme`, `-path` and
`-https-insecure-skip-verify`, under the `metrics-data-source` parameter names: given on the
command line, they win over the source's parameters, as an operator who passes a flag expects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from igw.epp.datalayer.core_metrics_extractor import CoreMetricsExtractor
from igw.epp.datalayer.datastore import Datastore
from igw.epp.datalayer.metrics_data_source import MetricsDataSource
from igw.epp.framework.datalayer import DataExtractor, DataSource

__all__ = ["DataLayerConfig", "datastore_from_config"]


@dataclass(frozen=True, slots=True)
class DataLayerConfig:
    """The configured source and its extractor; both None when collection is off."""

    source: DataSource | None
    extractor: DataExtractor | None

    @classmethod
    def default(cls) -> DataLayerConfig:
        """Upstream's default: `metrics-data-source` with `core-metrics-extractor`."""
        return cls(MetricsDataSource(), CoreMetricsExtractor())

    @classmethod
    def off(cls) -> DataLayerConfig:
        return cls(None, None)


def datastore_from_config(
    data_layer: DataLayerConfig,
    *,
    refresh_interval_s: float,
    clock: Callable[[], float] | None = None,
    source_overrides: Mapping[str, Any] | None = None,
) -> Datastore:
    """A datastore scraping as `data_layer` says, not started.

    Raises `ValueError` when `source_overrides` are given for a source they cannot apply to (not
    a `metrics-data-source`), or hold a bad value.
    """
    extra: dict[str, Any] = {} if clock is None else {"clock": clock}
    source, extractor = data_layer.source, data_layer.extractor
    if source is None or extractor is None:
        return Datastore(refresh_interval_s=refresh_interval_s, collect=False, **extra)
    if source_overrides:
        if not isinstance(source, MetricsDataSource):
            raise ValueError(
                "the --model-server-metrics-* flags configure a metrics-data-source; "
                f"the configured source {source.name!r} is a {source.type_name}"
            )
        source = source.with_overrides(source_overrides)
    return Datastore(source, extractor, refresh_interval_s=refresh_interval_s, **extra)
