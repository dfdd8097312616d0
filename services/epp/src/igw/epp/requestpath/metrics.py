"""The request path's Prometheus metrics, with upstream GIE's names, labels and buckets (§7).

`model_name` is the model the client asked for, `target_model_name` the one sent to the backend.
Registered on the registry given (the EPP shares one with the scheduler's metrics), never the
global one. Everything recorded per request uses `igw.common.telemetry.hot` (a fifth of the
EPP's Python time went to prometheus_client's locking before).
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Gauge

from igw.common.telemetry import hot
from igw.epp.framework.parsing import Usage

__all__ = ["RequestMetrics"]

_DURATION_BUCKETS: Final = (
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30,
    45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600,
)  # fmt: skip
_REQUEST_SIZE_BUCKETS: Final = tuple(2**i for i in range(6, 31))  # 64 B .. 1 GiB
_RESPONSE_SIZE_BUCKETS: Final = (1, *(2**i for i in range(3, 17)))  # 1 .. 65536
_INPUT_TOKEN_BUCKETS: Final = (1, *(2**i for i in range(3, 21)))  # 1 .. 1048576
_OUTPUT_TOKEN_BUCKETS: Final = (1, *(2**i for i in range(3, 14)))  # 1 .. 8192
_NTPOT_BUCKETS: Final = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
_MODELS: Final = ("model_name", "target_model_name")


class RequestMetrics:
    """Every series the request path records; one per EPP."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = hot.Counter(
            "inference_objective_request", "[ALPHA] Counter of inference objective requests "
            "broken out for each model and target model.",
            [*_MODELS, "priority"], registry=r,
        )  # fmt: skip
        self.errors = hot.Counter(
            "inference_objective_request_error", "[ALPHA] Counter of inference objective "
            "requests errors broken out for each model and target model.",
            [*_MODELS, "error_code"], registry=r,
        )  # fmt: skip
        self.duration = self._histogram(
            "request_duration_seconds", "response latency", _DURATION_BUCKETS
        )
        self.request_sizes = self._histogram("request_sizes", "request size", _REQUEST_SIZE_BUCKETS)
        self.response_sizes = self._histogram(
            "response_sizes", "response size", _RESPONSE_SIZE_BUCKETS
        )
        self.input_tokens = self._histogram("input_tokens", "input token", _INPUT_TOKEN_BUCKETS)
        self.output_tokens = self._histogram("output_tokens", "output token", _OUTPUT_TOKEN_BUCKETS)
        self.cached_tokens = self._histogram(
            "prompt_cached_tokens", "prompt cached token", _INPUT_TOKEN_BUCKETS
        )
        self.ntpot = self._histogram(
            "normalized_time_per_output_token_seconds",
            "normalized time per output token",
            _NTPOT_BUCKETS,
        )
        self.running = hot.Gauge(
            "inference_objective_running_requests",
            "[ALPHA] Inference objective number of running requests in each model.",
            ["model_name"], registry=r,
        )  # fmt: skip
        self.info = Gauge(
            "inference_extension_info", "[ALPHA] General information of the current build of "
            "Inference Extension.", ["commit", "build_ref"], registry=r,
        )  # fmt: skip
        self.scheduler_attempts = hot.Counter(
            "inference_extension_scheduler_attempts", "[ALPHA] Total number of scheduling "
            "attempts.", ["status", "target_model_name", "pod_name", "namespace", "port"],
            registry=r,
        )  # fmt: skip
        # One per request an InferenceModelRewrite rule decided; its label is `target_model`,
        # not `target_model_name`, as upstream (pkg/epp/metrics/metrics.go, v1.5.0).
        self.rewrite_decisions = hot.Counter(
            "inference_extension_model_rewrite_decisions", "[ALPHA] Total number of inference "
            "model rewrite decisions.", ["model_rewrite_name", "model_name", "target_model"],
            registry=r,
        )  # fmt: skip

    def _histogram(self, suffix: str, what: str, buckets: tuple[float, ...]) -> hot.Histogram:
        return hot.Histogram(
            f"inference_objective_{suffix}",
            f"[ALPHA] Inference objective {what} distribution for each model and target model.",
            _MODELS, buckets=buckets, registry=self.registry,
        )  # fmt: skip

    def record_usage(self, model: str, target: str, usage: Usage) -> None:
        if usage.prompt_tokens > 0:
            self.input_tokens.labels(model, target).observe(usage.prompt_tokens)
        if usage.completion_tokens > 0:
            self.output_tokens.labels(model, target).observe(usage.completion_tokens)
        if usage.cached_tokens is not None:
            self.cached_tokens.labels(model, target).observe(usage.cached_tokens)

    def record_completion(
        self, model: str, target: str, seconds: float, response_bytes: int, usage: Usage | None
    ) -> None:
        """Latency, response size and NTPOT of a response that ended."""
        self.duration.labels(model, target).observe(seconds)
        self.response_sizes.labels(model, target).observe(response_bytes)
        if usage is not None and usage.completion_tokens > 0:
            self.ntpot.labels(model, target).observe(seconds / usage.completion_tokens)
