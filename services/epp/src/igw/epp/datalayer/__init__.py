"""The EPP's data layer: scraping each endpoint's model-server metrics into the datastore.

`Datastore` holds the pool's endpoints and their latest `Metrics` as an atomically swapped snapshot;
one `Collector` task per endpoint polls it over its own keep-alive `HttpClient` (made by the
shared `MetricsDataSource`, the `metrics-data-source` plugin), reads the wanted families with the
`Scanner`, and maps them with the endpoint's `EngineMapping` (chosen by `CoreMetricsExtractor`,
the `core-metrics-extractor` plugin). `PoolMetricsCollector` exports the pool gauges.
`datastore_from_config` builds the datastore a loaded config's `dataLayer` section asks for.
"""

from igw.epp.datalayer.assembly import DataLayerConfig, datastore_from_config
from igw.epp.datalayer.collector import Collector
from igw.epp.datalayer.core_metrics_extractor import (
    CoreMetricsExtractor,
    CoreMetricsExtractorParams,
    EngineReader,
)
from igw.epp.datalayer.datastore import Datastore
from igw.epp.datalayer.engines import BUILTIN_ENGINES, EngineConfig, EngineMapping, ExtractError
from igw.epp.datalayer.http_client import FetchError, HttpClient
from igw.epp.datalayer.metrics_data_source import (
    MetricsDataSource,
    MetricsDataSourceParams,
    ScrapeError,
)
from igw.epp.datalayer.pool_metrics import PoolMetricsCollector
from igw.epp.datalayer.scanner import Sample, ScanError, Scanner, Selector, SelectorError

__all__ = [
    "BUILTIN_ENGINES",
    "Collector",
    "CoreMetricsExtractor",
    "CoreMetricsExtractorParams",
    "DataLayerConfig",
    "Datastore",
    "EngineConfig",
    "EngineMapping",
    "EngineReader",
    "ExtractError",
    "FetchError",
    "HttpClient",
    "MetricsDataSource",
    "MetricsDataSourceParams",
    "PoolMetricsCollector",
    "Sample",
    "ScanError",
    "Scanner",
    "ScrapeError",
    "Selector",
    "SelectorError",
    "datastore_from_config",
]
