"""The EPP's data layer: scraping each endpoint's model-server metrics into the datastore.

`Datastore` holds the pool's endpoints and their latest `Metrics` as an atomically swapped snapshot;
one `Collector` task per endpoint polls it over its own keep-alive `HttpClient` (made by the
shared `MetricsDataSource`, `metrics-data-source`), reads the wanted families with the `Scanner`,
and maps them with the endpoint's `EngineMapping` (`core-metrics-extractor`).
`PoolMetricsCollector` exports the pool gauges. `assembly.datastore_from_config` builds the
datastore a loaded config's `dataLayer` section asks for (not re-exported here: it imports the
config package, which imports this one).
"""

from igw.epp.datalayer.collector import Collector
from igw.epp.datalayer.datastore import Datastore
from igw.epp.datalayer.engines import (
    BUILTIN_ENGINES,
    CoreMetricsExtractor,
    CoreMetricsExtractorParams,
    EngineConfig,
    EngineMapping,
    ExtractError,
)
from igw.epp.datalayer.http_client import FetchError, HttpClient
from igw.epp.datalayer.pool_metrics import PoolMetricsCollector
from igw.epp.datalayer.scanner import Sample, ScanError, Scanner, Selector, SelectorError
from igw.epp.datalayer.scraper import MetricsDataSource, MetricsDataSourceParams, ScrapeError

__all__ = [
    "BUILTIN_ENGINES",
    "Collector",
    "CoreMetricsExtractor",
    "CoreMetricsExtractorParams",
    "Datastore",
    "EngineConfig",
    "EngineMapping",
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
]
