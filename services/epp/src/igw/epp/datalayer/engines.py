"""Engine mappings: which Prometheus series mean what, per model server.

The built-in table is upstream's (reference §4.3) for `vllm`, `sglang`, `trtllm-serve` and
`triton-tensorrt-llm`. An endpoint's engine is the value of its `engineLabelKey` label
(`inference.networking.k8s.io/engine-type`), else `defaultEngine` (`vllm`); an unknown value falls
back to the default engine with a warning. A user `engineConfigs` entry replaces the built-in
engine of the same name entirely; an empty spec disables that metric.

Rules, as upstream: among several matching series the one with the latest timestamp wins (ties and
untimestamped series: the last one on the page); for LoRA info the highest *value* wins (the value
is the last-update time), its labels `running_lora_adapters` and `waiting_lora_adapters` are comma
lists and `max_lora` an integer. Cache info is read from the labels `block_size`/`page_size` and
`num_gpu_blocks`/`num_pages` (vLLM and SGLang spellings, whichever is present).

Deliberate improvement: the built-in `vllm` engine reads `vllm:kv_cache_usage_perc` and, when a
page lacks it, the older `vllm:gpu_cache_usage_perc` (upstream v1.0's default; vLLM renamed it), so
one EPP serves old and new vLLM versions alike. A user-supplied `vllm` entry has no fallback.

A page where queue, running and KV usage are all absent (and enabled) is an `ExtractError`; a
partial page updates what it has, keeps the previous values of the rest, and names what is missing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from igw.epp.datalayer.scanner import Sample, ScanHints, Scanner, Selector, SelectorError
from igw.epp.endpoints import Metrics
from igw.epp.framework.params import Params

__all__ = [
    "BUILTIN_ENGINES",
    "KV_FALLBACKS",
    "EngineConfig",
    "EngineHints",
    "EngineMapping",
    "ExtractError",
]


class ExtractError(ValueError):
    """A page holds none of the engine's core metrics (wrong engine, or not a metrics page)."""


class EngineConfig(Params, frozen=True):
    """One engine's metric specs (PromQL vector selectors); "" disables a metric."""

    name: str
    queued_requests_spec: str = ""
    running_requests_spec: str = ""
    kv_usage_spec: str = ""
    lora_spec: str = ""
    cache_info_spec: str = ""
    cache_block_size_spec: str = ""
    cache_num_blocks_spec: str = ""


_TRITON_KV = "nv_trt_llm_kv_cache_block_metrics"
BUILTIN_ENGINES: Mapping[str, EngineConfig] = {
    engine.name: engine
    for engine in (
        EngineConfig(
            name="vllm",
            queued_requests_spec="vllm:num_requests_waiting",
            running_requests_spec="vllm:num_requests_running",
            kv_usage_spec="vllm:kv_cache_usage_perc",
            lora_spec="vllm:lora_requests_info",
            cache_info_spec="vllm:cache_config_info",
        ),
        EngineConfig(
            name="sglang",
            queued_requests_spec="sglang:num_queue_reqs",
            running_requests_spec="sglang:num_running_reqs",
            kv_usage_spec="sglang:token_usage",
            cache_info_spec="sglang:cache_config_info",
        ),
        EngineConfig(
            name="trtllm-serve",
            queued_requests_spec="trtllm_num_requests_waiting",
            running_requests_spec="trtllm_num_requests_running",
            kv_usage_spec="trtllm_kv_cache_utilization",
            cache_block_size_spec="trtllm_kv_cache_tokens_per_block",
            cache_num_blocks_spec="trtllm_kv_cache_max_blocks",
        ),
        EngineConfig(
            name="triton-tensorrt-llm",
            queued_requests_spec="nv_trt_llm_request_metrics{request_type=waiting}",
            running_requests_spec="nv_trt_llm_request_metrics{request_type=scheduled}",
            kv_usage_spec=f"{_TRITON_KV}{{kv_cache_block_type=fraction}}",
            cache_block_size_spec=f"{_TRITON_KV}{{kv_cache_block_type=tokens_per}}",
            cache_num_blocks_spec=f"{_TRITON_KV}{{kv_cache_block_type=max}}",
        ),
    )
}
# Read when the engine's own KV spec finds nothing; built-in engines only (see module docstring).
_CORE_FIELDS = frozenset({"waiting", "running", "kv_cache_usage"})
KV_FALLBACKS: Mapping[str, tuple[str, ...]] = {"vllm": ("vllm:gpu_cache_usage_perc",)}


@dataclass(frozen=True, slots=True)
class EngineMapping:
    """One engine's parsed selectors and the scanner over them; turns a page into `Metrics`."""

    engine: str
    queued: Selector | None
    running: Selector | None
    kv_usage: Selector | None
    kv_fallback: Scanner | None
    """Scanned only when a page lacks `kv_usage`: most pages have it, and a miss costs a search
    of the whole page."""
    lora: Selector | None
    cache_info: Selector | None
    block_size: Selector | None
    num_blocks: Selector | None
    scanner: Scanner

    @classmethod
    def compile(cls, config: EngineConfig, kv_fallbacks: Sequence[str] = ()) -> EngineMapping:
        """Parse every spec once; raises `SelectorError` naming the engine and the field."""

        def parse(field: str, spec: str) -> Selector | None:
            try:
                return Selector.parse(spec) if spec.strip() else None
            except SelectorError as exc:
                raise SelectorError(f"engine {config.name!r}, {field}: {exc}") from None

        kv = parse("kvUsageSpec", config.kv_usage_spec)
        fallbacks = [Selector.parse(spec) for spec in kv_fallbacks] if kv else []
        fields = {
            "queued": parse("queuedRequestsSpec", config.queued_requests_spec),
            "running": parse("runningRequestsSpec", config.running_requests_spec),
            "lora": parse("loraSpec", config.lora_spec),
            "cache_info": parse("cacheInfoSpec", config.cache_info_spec),
            "block_size": parse("cacheBlockSizeSpec", config.cache_block_size_spec),
            "num_blocks": parse("cacheNumBlocksSpec", config.cache_num_blocks_spec),
        }
        wanted = [sel for sel in (*fields.values(), kv) if sel is not None]
        return cls(
            engine=config.name,
            kv_usage=kv,
            kv_fallback=Scanner(fallbacks) if fallbacks else None,
            scanner=Scanner(wanted),
            **fields,
        )

    def new_hints(self) -> EngineHints:
        """Hints to keep per endpoint and pass to every `extract` (`EngineHints`)."""
        fallback = self.kv_fallback.new_hints() if self.kv_fallback is not None else None
        return EngineHints(self.scanner.new_hints(), fallback)

    def extract(
        self, body: bytes, previous: Metrics, now: float, hints: EngineHints | None = None
    ) -> tuple[Metrics, list[str]]:
        """New metrics from a page and the names of missing core specs; raises on bad pages.

        Raises `ScanError` for a malformed wanted line and `ExtractError` for a page without
        any enabled core metric. Fields the page lacks keep their `previous` values. `hints`
        (from `new_hints`, one per endpoint) make the next page of the same server cheaper.
        """
        hints = hints or EngineHints(None, None)
        found = self.scanner.scan(body, hints.scan)
        changes: dict[str, Any] = {"updated_at": now}
        missing: list[str] = []
        for field, selector in (
            ("waiting", self.queued),
            ("running", self.running),
            ("kv_cache_usage", self.kv_usage),
            ("cache_block_size", self.block_size),
            ("cache_num_blocks", self.num_blocks),
        ):
            sample = _latest(found, selector)
            if sample is None and field == "kv_cache_usage":
                sample = self._kv_fallback(body, hints.fallback)
            if sample is not None:
                changes[field] = sample.value if field == "kv_cache_usage" else int(sample.value)
            elif selector is not None and field in _CORE_FIELDS:
                missing.append(str(selector))
        changes.update(hints.derived(0, _lora_sample(found, self.lora), _lora_fields))
        changes.update(hints.derived(1, _latest(found, self.cache_info), _cache_info_fields))
        core = [sel for sel in (self.queued, self.running, self.kv_usage) if sel]
        if core and len(missing) == len(core):
            raise ExtractError(f"no {self.engine} metrics on the page (looked for {missing})")
        return replace(previous, **changes), missing

    def _kv_fallback(self, body: bytes, hints: ScanHints | None) -> Sample | None:
        if self.kv_fallback is None:
            return None
        found = self.kv_fallback.scan(body, hints)
        return next((s for s in (_latest(found, sel) for sel in found) if s), None)


class EngineHints:
    """One endpoint's memory between `extract` calls: the scan hints of its pages, and the
    fields last derived from label-carrying samples (LoRA state, cache config). A scan that
    finds a family's lines unchanged hands back the same `Sample` objects, so those fields are
    derived again only when their sample is a new one."""

    __slots__ = ("_derived", "fallback", "scan")

    def __init__(self, scan: ScanHints | None, fallback: ScanHints | None) -> None:
        self.scan = scan
        self.fallback = fallback
        self._derived: list[tuple[Sample | None, dict[str, Any]]] = [(None, {}), (None, {})]

    def derived(
        self, slot: int, sample: Sample | None, derive: Callable[[Sample], dict[str, Any]]
    ) -> dict[str, Any]:
        """`derive(sample)`, or what it gave last time for this very sample; {} for None."""
        if sample is None:
            return {}
        seen, fields = self._derived[slot]
        if seen is not sample:
            fields = derive(sample)
            self._derived[slot] = (sample, fields)
        return fields


def _latest(found: Mapping[Selector, list[Sample]], selector: Selector | None) -> Sample | None:
    """The finite sample with the latest timestamp (ties: the last on the page)."""
    best: Sample | None = None
    for sample in found.get(selector, ()) if selector is not None else ():
        if not math.isfinite(sample.value):
            continue
        if best is None or (sample.timestamp_ms or 0) >= (best.timestamp_ms or 0):
            best = sample
    return best


def _lora_sample(found: Mapping[Selector, list[Sample]], lora: Selector | None) -> Sample | None:
    """The LoRA info sample with the highest value (its last-update time)."""
    samples = [s for s in found.get(lora, ()) if not math.isnan(s.value)] if lora else []
    return max(samples, key=lambda sample: sample.value) if samples else None


def _lora_fields(sample: Sample) -> dict[str, Any]:
    labels = sample.labels
    fields: dict[str, Any] = {
        "active_models": _name_set(labels.get("running_lora_adapters", "")),
        "waiting_models": _name_set(labels.get("waiting_lora_adapters", "")),
    }
    max_lora = _int_label(labels, "max_lora")
    if max_lora is not None:
        fields["max_active_models"] = max_lora
    return fields


def _cache_info_fields(sample: Sample) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for field, keys in (
        ("cache_block_size", ("block_size", "page_size")),
        ("cache_num_blocks", ("num_gpu_blocks", "num_pages")),
    ):
        value = next((v for k in keys if (v := _int_label(sample.labels, k)) is not None), None)
        if value is not None:
            fields[field] = value
    return fields


def _name_set(text: str) -> frozenset[str]:
    return frozenset(name.strip() for name in text.split(",") if name.strip())


def _int_label(labels: Mapping[str, str], key: str) -> int | None:
    try:
        return int(labels[key])
    except (KeyError, ValueError):
        return None
