"""Model-server `/metrics` pages for tests and benchmarks: vLLM realistic, other engines small.

`vllm_page()` renders, through prometheus-client as vLLM does, the families a vLLM V1 server
exposes: scheduler gauges, KV and prefix-cache metrics, token counters, about fifteen latency and
size histograms with their buckets, `vllm:cache_config_info`, `vllm:lora_requests_info`, plus the
HTTP instrumentator families: about 33 KB and 350 lines for one model. The values the EPP reads
are parameters, so tests can check what the scraper sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["LoraInfo", "VllmState", "sglang_page", "triton_page", "trtllm_page", "vllm_page"]

_LATENCY = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
            120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)  # fmt: skip
_TTFT = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
         10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)  # fmt: skip
_ITL = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
        20.0, 40.0, 80.0)  # fmt: skip
_TOKENS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000)
_HTTP = (0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5,
         5.0, 7.5, 10.0, 30.0, 60.0)  # fmt: skip


@dataclass(frozen=True)
class LoraInfo:
    """One `vllm:lora_requests_info` series; `value` is its last-update timestamp."""

    running: Sequence[str] = ()
    waiting: Sequence[str] = ()
    max_lora: int = 4
    value: float = 1.7e9


@dataclass(frozen=True)
class VllmState:
    """The values a vLLM page reports that the EPP reads."""

    model: str = "meta-llama/Llama-3.1-8B-Instruct"
    waiting: int = 0
    running: int = 0
    kv_usage: float = 0.0
    kv_metric: str = "vllm:kv_cache_usage_perc"
    """`vllm:gpu_cache_usage_perc` renders an older vLLM's page."""
    block_size: int = 16
    num_gpu_blocks: int = 27_000
    lora: Sequence[LoraInfo] = field(default_factory=lambda: (LoraInfo(),))


def vllm_page(state: VllmState | None = None) -> bytes:
    """A realistic vLLM `/metrics` body in the text format (0.0.4)."""
    state = state or VllmState()
    registry = CollectorRegistry()
    labels = {"model_name": state.model, "engine": "0"}
    _scheduler_families(registry, state, labels)
    _counters(registry, labels)
    _histograms(registry, labels)
    cache = Gauge("vllm:cache_config_info", "Information of the LLMEngine CacheConfig",
                  ["block_size", "cache_dtype", "enable_prefix_caching", "gpu_memory_utilization",
                   "num_cpu_blocks", "num_gpu_blocks", "prefix_caching_hash_algo"],
                  registry=registry)  # fmt: skip
    cache.labels(str(state.block_size), "auto", "True", "0.9", "None", str(state.num_gpu_blocks),
                 "builtin").set(1)  # fmt: skip
    lora = Gauge("vllm:lora_requests_info", "Running stats on lora requests.",
                 ["max_lora", "running_lora_adapters", "waiting_lora_adapters"],
                 registry=registry)  # fmt: skip
    for info in state.lora:
        lora.labels(str(info.max_lora), ",".join(info.running), ",".join(info.waiting)).set(
            info.value
        )
    _http_families(registry)
    return generate_latest(registry)


def _scheduler_families(
    registry: CollectorRegistry, state: VllmState, labels: dict[str, str]
) -> None:
    names = list(labels)
    for name, help_text, value in (
        ("vllm:num_requests_running", "Number of requests in model execution batches.",
         state.running),
        ("vllm:num_requests_waiting", "Number of requests waiting to be processed.",
         state.waiting),
        (state.kv_metric, "KV-cache usage. 1 means 100 percent usage.", state.kv_usage),
    ):  # fmt: skip
        Gauge(name, help_text, names, registry=registry).labels(**labels).set(value)


def _counters(registry: CollectorRegistry, labels: dict[str, str]) -> None:
    names = list(labels)
    for name, help_text, value in (
        ("vllm:num_preemptions", "Cumulative number of preemption from the engine.", 3),
        ("vllm:prompt_tokens", "Number of prefill tokens processed.", 1_234_567),
        ("vllm:generation_tokens", "Number of generation tokens processed.", 456_789),
        ("vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens.",
         987_654),
        ("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.",
         543_210),
    ):  # fmt: skip
        Counter(name, help_text, names, registry=registry).labels(**labels).inc(value)
    success = Counter("vllm:request_success", "Count of successfully processed requests.",
                      [*names, "finished_reason"], registry=registry)  # fmt: skip
    for reason in ("stop", "length", "abort"):
        success.labels(**labels, finished_reason=reason).inc(42)


def _histograms(registry: CollectorRegistry, labels: dict[str, str]) -> None:
    names = list(labels)
    for name, buckets in (
        ("vllm:iteration_tokens_total", (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)),
        ("vllm:time_to_first_token_seconds", _TTFT),
        ("vllm:inter_token_latency_seconds", _ITL),
        ("vllm:e2e_request_latency_seconds", _LATENCY),
        ("vllm:request_queue_time_seconds", _LATENCY),
        ("vllm:request_prefill_time_seconds", _LATENCY),
        ("vllm:request_decode_time_seconds", _LATENCY),
        ("vllm:request_prompt_tokens", _TOKENS),
        ("vllm:request_generation_tokens", _TOKENS),
        ("vllm:request_params_n", (1, 2, 5, 10, 20)),
    ):
        histogram = Histogram(name, f"Histogram of {name}.", names, buckets=buckets,
                              registry=registry).labels(**labels)  # fmt: skip
        for value in (0.02, 0.3, 1.7, 12.0, 250.0):
            histogram.observe(value)


def _http_families(registry: CollectorRegistry) -> None:
    requests = Counter("http_requests", "Total number of requests by method, status and handler.",
                       ["method", "status", "handler"], registry=registry)  # fmt: skip
    duration = Histogram("http_request_duration_highr_seconds",
                         "Latency with many buckets but no API specific labels.",
                         buckets=_HTTP, registry=registry)  # fmt: skip
    for handler in ("/v1/completions", "/v1/chat/completions", "/metrics", "/health"):
        requests.labels("POST", "2xx", handler).inc(1000)
    for value in (0.004, 0.2, 1.3):
        duration.observe(value)


def sglang_page(*, waiting: int, running: int, token_usage: float, page_size: int = 1,
                num_pages: int = 0) -> bytes:  # fmt: skip
    """A small SGLang page: its scheduler gauges and cache config info."""
    model = 'model_name="Qwen/Qwen3-8B"'
    return (
        "# HELP sglang:num_running_reqs The number of running requests.\n"
        "# TYPE sglang:num_running_reqs gauge\n"
        f"sglang:num_running_reqs{{{model}}} {running}.0\n"
        f"sglang:num_queue_reqs{{{model}}} {waiting}.0\n"
        f"sglang:token_usage{{{model}}} {token_usage}\n"
        f"sglang:gen_throughput{{{model}}} 123.4\n"
        f'sglang:cache_config_info{{page_size="{page_size}",num_pages="{num_pages}"}} 1.0\n'
    ).encode()


def trtllm_page(*, waiting: int, running: int, utilization: float, tokens_per_block: int,
                max_blocks: int) -> bytes:  # fmt: skip
    """A small trtllm-serve page."""
    return (
        "# TYPE trtllm_num_requests_waiting gauge\n"
        f"trtllm_num_requests_waiting {waiting}\n"
        f"trtllm_num_requests_running {running}\n"
        f"trtllm_kv_cache_utilization {utilization}\n"
        f"trtllm_kv_cache_tokens_per_block {tokens_per_block}\n"
        f"trtllm_kv_cache_max_blocks {max_blocks}\n"
        "trtllm_kv_cache_hit_rate 0.5\n"
    ).encode()


def triton_page(*, waiting: int, scheduled: int, fraction: float, tokens_per: int,
                max_blocks: int) -> bytes:  # fmt: skip
    """A small Triton TensorRT-LLM backend page: one family per kind, told apart by labels."""
    base = 'model="tensorrt_llm",version="1"'
    kv = "nv_trt_llm_kv_cache_block_metrics"
    return (
        "# TYPE nv_trt_llm_request_metrics gauge\n"
        f'nv_trt_llm_request_metrics{{{base},request_type="context"}} 1\n'
        f'nv_trt_llm_request_metrics{{{base},request_type="scheduled"}} {scheduled}\n'
        f'nv_trt_llm_request_metrics{{{base},request_type="waiting"}} {waiting}\n'
        f'nv_trt_llm_request_metrics{{{base},request_type="active"}} 9\n'
        f"# TYPE {kv} gauge\n"
        f'{kv}{{{base},kv_cache_block_type="fraction"}} {fraction}\n'
        f'{kv}{{{base},kv_cache_block_type="tokens_per"}} {tokens_per}\n'
        f'{kv}{{{base},kv_cache_block_type="max"}} {max_blocks}\n'
        f'{kv}{{{base},kv_cache_block_type="used"}} 77\n'
    ).encode()
