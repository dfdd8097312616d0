"""The EPP's data layer: scraping each endpoint's model-server metrics into the datastore.

`Datastore` holds the pool's endpoints and their latest `Metrics` as an atomically swapped snapshot;
one `Collector` task per endpoint polls it through the shared `MetricsDataSource`
(`metrics-data-source`), reads the wanted families with the `Scanner`, and maps them with the
endpoint's `EngineMapping` (`core-metrics-extractor`). `PoolMetricsCollector` exports the pool
gauges.
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
