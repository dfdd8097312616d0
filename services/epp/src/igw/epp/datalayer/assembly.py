"""The datastore a loaded config asks for: its `dataLayer` section turned into running parts.

The config loader has already validated the section (`igw.epp.config.data_layer`): at most one
source, with exactly one extractor, parameters and metric specs that compile. Here each name is
resolved as upstream resolves it, by plugin instance name: the configured instance when `plugins`
holds one of the right type under that name (this is how an omitted `dataLayer` section still
honours a listed `metrics-data-source` or `core-metrics-extractor` and its parameters), else one
built from the section's own parameters (the defaults). No source means collection off.

`source_overrides` are upstream's deprecated flags `--model-server-metrics-scheme`, `-path` and
`-https-insecure-skip-verify`, under the source's parameter names: given on the command line,
they win over the source's parameters, as an operator who passes a flag expects.

Not re-exported by the package: it imports `igw.epp.config`, which imports this package.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from igw.epp.config import data_layer as config
from igw.epp.datalayer.datastore import Datastore
from igw.epp.datalayer.scraper import MetricsDataSource

__all__ = ["datastore_from_config"]


def datastore_from_config(
    data_layer: config.DataLayerConfig,
    plugins: Mapping[str, object],
    *,
    refresh_interval_s: float,
    timeout_s: float = 1.0,
    clock: Callable[[], float] | None = None,
    source_overrides: Mapping[str, Any] | None = None,
) -> Datastore:
    """A datastore scraping as `data_layer` says, not started; `plugins`: the config's instances."""
    extra: dict[str, Any] = {} if clock is None else {"clock": clock}
    if not data_layer.sources:
        return Datastore(refresh_interval_s=refresh_interval_s, collect=False, **extra)
    (source,) = data_layer.sources
    (extractor,) = source.extractors
    source_plugin = plugins.get(source.name)
    if not isinstance(source_plugin, config.MetricsDataSource):
        source_plugin = config.MetricsDataSource(source.name, source.params)
    extractor_plugin = plugins.get(extractor.name)
    if not isinstance(extractor_plugin, config.CoreMetricsExtractor):
        extractor_plugin = config.CoreMetricsExtractor(extractor.name, extractor.params)
    runtime_params = source_plugin.runtime_params
    if source_overrides:
        params = msgspec.structs.replace(source_plugin.params, **source_overrides)
        runtime_params = config.runtime_source_params(params)
    return Datastore(
        MetricsDataSource(runtime_params, timeout_s=timeout_s),
        extractor_plugin.extractor,
        refresh_interval_s=refresh_interval_s,
        **extra,
    )
