"""The built-in scheduling and request-control plugins, one module per registered type (STYLE §1).

Importing this package registers nothing: `igw.epp.config.builtin` lists these classes in the
EPP's one registry table.
"""

from igw.epp.scheduling.plugins.approx_prefix_cache_producer import ApproxPrefixCacheProducer
from igw.epp.scheduling.plugins.concurrency_detector import ConcurrencyDetector
from igw.epp.scheduling.plugins.destination_endpoint_served_verifier import (
    DestinationEndpointServedVerifier,
)
from igw.epp.scheduling.plugins.header_based_testing_filter import HeaderBasedTestingFilter
from igw.epp.scheduling.plugins.inflight_load_producer import InflightLoadProducer
from igw.epp.scheduling.plugins.kv_cache_utilization_scorer import KvCacheUtilizationScorer
from igw.epp.scheduling.plugins.latency_slo_admitter import LatencySloAdmitter
from igw.epp.scheduling.plugins.lora_affinity_scorer import LoraAffinityScorer
from igw.epp.scheduling.plugins.max_score_picker import MaxScorePicker
from igw.epp.scheduling.plugins.online_latency_producer import OnlineLatencyProducer
from igw.epp.scheduling.plugins.predicted_ttft_scorer import PredictedTtftScorer
from igw.epp.scheduling.plugins.prefix_cache_affinity_filter import PrefixCacheAffinityFilter
from igw.epp.scheduling.plugins.prefix_cache_scorer import PrefixCacheScorer
from igw.epp.scheduling.plugins.queue_scorer import QueueScorer
from igw.epp.scheduling.plugins.random_picker import RandomPicker
from igw.epp.scheduling.plugins.request_attribute_reporter import RequestAttributeReporter
from igw.epp.scheduling.plugins.request_latency_reporter import RequestLatencyReporter
from igw.epp.scheduling.plugins.running_requests_size_scorer import RunningRequestsSizeScorer
from igw.epp.scheduling.plugins.single_profile_handler import SingleProfileHandler
from igw.epp.scheduling.plugins.token_load_scorer import TokenLoadScorer
from igw.epp.scheduling.plugins.utilization_detector import UtilizationDetector
from igw.epp.scheduling.plugins.weighted_random_picker import WeightedRandomPicker

__all__ = [
    "ApproxPrefixCacheProducer",
    "ConcurrencyDetector",
    "DestinationEndpointServedVerifier",
    "HeaderBasedTestingFilter",
    "InflightLoadProducer",
    "KvCacheUtilizationScorer",
    "LatencySloAdmitter",
    "LoraAffinityScorer",
    "MaxScorePicker",
    "OnlineLatencyProducer",
    "PredictedTtftScorer",
    "PrefixCacheAffinityFilter",
    "PrefixCacheScorer",
    "QueueScorer",
    "RandomPicker",
    "RequestAttributeReporter",
    "RequestLatencyReporter",
    "RunningRequestsSizeScorer",
    "SingleProfileHandler",
    "TokenLoadScorer",
    "UtilizationDetector",
    "WeightedRandomPicker",
]
