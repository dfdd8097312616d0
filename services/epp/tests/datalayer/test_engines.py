"""Engine mappings: each built-in engine's page becomes the right `Metrics`; the rules around."""

from __future__ import annotations

import pytest

from igw.epp.datalayer.core_metrics_extractor import CoreMetricsExtractor
from igw.epp.datalayer.engines import BUILTIN_ENGINES, ExtractError
from igw.epp.datalayer.scanner import ScanError
from igw.epp.endpoints import ENGINE_TYPE_LABEL, Endpoint, Metrics
from igw.epp.framework import PluginHandle
from igw.epp.testing import LoraInfo, VllmState, sglang_page, triton_page, trtllm_page, vllm_page

NOW = 123.0


def endpoint(engine: str | None = None) -> Endpoint:
    labels = {ENGINE_TYPE_LABEL: engine} if engine else {}
    return Endpoint("pod-rank-0", "10.0.0.1", 8000, labels=labels)


def extract(page: bytes, engine: str | None = None) -> Metrics:
    metrics, missing = (
        CoreMetricsExtractor().mapping_for(endpoint(engine)).extract(page, Metrics(), NOW)
    )
    assert missing == []
    return metrics


@pytest.mark.parametrize(
    ("engine", "page", "expected"),
    [
        pytest.param(
            None, vllm_page(VllmState(waiting=4, running=2, kv_usage=0.375, block_size=32,
                                      num_gpu_blocks=1000, lora=())),
            Metrics(waiting=4, running=2, kv_cache_usage=0.375, cache_block_size=32,
                    cache_num_blocks=1000, updated_at=NOW),
            id="vllm-by-default",
        ),
        pytest.param(
            "sglang", sglang_page(waiting=5, running=6, token_usage=0.5, page_size=64,
                                  num_pages=512),
            Metrics(waiting=5, running=6, kv_cache_usage=0.5, cache_block_size=64,
                    cache_num_blocks=512, updated_at=NOW),
            id="sglang",
        ),
        pytest.param(
            "trtllm-serve", trtllm_page(waiting=1, running=8, utilization=0.9,
                                        tokens_per_block=32, max_blocks=4096),
            Metrics(waiting=1, running=8, kv_cache_usage=0.9, cache_block_size=32,
                    cache_num_blocks=4096, updated_at=NOW),
            id="trtllm-serve",
        ),
        pytest.param(
            "triton-tensorrt-llm", triton_page(waiting=3, scheduled=7, fraction=0.125,
                                               tokens_per=64, max_blocks=2048),
            Metrics(waiting=3, running=7, kv_cache_usage=0.125, cache_block_size=64,
                    cache_num_blocks=2048, updated_at=NOW),
            id="triton-tensorrt-llm-label-selectors",
        ),
    ],
)  # fmt: skip
def test_each_builtin_engine_maps_its_page(
    engine: str | None, page: bytes, expected: Metrics
) -> None:
    assert extract(page, engine) == expected


def test_builtin_table_covers_upstream_engines() -> None:
    assert set(BUILTIN_ENGINES) == {"vllm", "sglang", "trtllm-serve", "triton-tensorrt-llm"}


def test_vllm_falls_back_to_the_old_kv_metric_name() -> None:
    page = vllm_page(VllmState(kv_usage=0.6, kv_metric="vllm:gpu_cache_usage_perc"))
    assert extract(page).kv_cache_usage == 0.6


def test_vllm_prefers_the_new_kv_metric_name_when_both_are_present() -> None:
    page = vllm_page(VllmState(kv_usage=0.2)) + b"vllm:gpu_cache_usage_perc 0.9\n"
    assert extract(page).kv_cache_usage == 0.2


def test_lora_info_takes_the_series_with_the_highest_value() -> None:
    page = vllm_page(
        VllmState(lora=(
            LoraInfo(running=("old",), value=1_700_000_100.0),
            LoraInfo(running=("sql-lora", "chat-lora"), waiting=("food-review-1",), max_lora=2,
                     value=1_700_000_200.0),
            LoraInfo(running=("older",), value=1_700_000_000.0),
        ))
    )  # fmt: skip
    metrics = extract(page)
    assert metrics.active_models == {"sql-lora", "chat-lora"}
    assert metrics.waiting_models == {"food-review-1"}
    assert metrics.max_active_models == 2


def test_among_series_the_latest_timestamp_wins() -> None:
    page = b"vllm:num_requests_waiting 5 2000\nvllm:num_requests_waiting 9 1000\n"
    page += b"vllm:num_requests_running 1\nvllm:kv_cache_usage_perc 0.1\n"
    assert extract(page).waiting == 5


def test_user_engine_config_replaces_the_builtin_engine_entirely() -> None:
    extractor = _extractor({
        "engineConfigs": [{"name": "vllm", "queuedRequestsSpec": "my_queue{pool=a}",
                           "runningRequestsSpec": "", "kvUsageSpec": "my_kv"}],
    })  # fmt: skip
    page = b'my_queue{pool="b"} 1\nmy_queue{pool="a"} 2\nmy_kv 0.5\n'
    page += b"vllm:num_requests_running 9\nvllm:gpu_cache_usage_perc 0.9\n"
    metrics, missing = extractor.mapping_for(endpoint()).extract(page, Metrics(), NOW)
    # running is disabled (empty spec) and the built-in LoRA/cache specs are gone with it.
    assert metrics == Metrics(waiting=2, kv_cache_usage=0.5, updated_at=NOW)
    assert missing == []


def test_user_engine_without_kv_has_no_old_name_fallback() -> None:
    extractor = _extractor({
        "engineConfigs": [{"name": "vllm", "queuedRequestsSpec": "vllm:num_requests_waiting",
                           "kvUsageSpec": "vllm:kv_cache_usage_perc"}],
    })  # fmt: skip
    page = b"vllm:num_requests_waiting 1\nvllm:gpu_cache_usage_perc 0.9\n"
    metrics, missing = extractor.mapping_for(endpoint()).extract(page, Metrics(), NOW)
    assert (metrics.kv_cache_usage, missing) == (0.0, ["vllm:kv_cache_usage_perc"])


def test_unknown_engine_label_uses_the_default_engine() -> None:
    assert extract(vllm_page(VllmState(waiting=3)), engine="mystery").waiting == 3


def test_default_engine_and_label_key_are_parameters() -> None:
    extractor = _extractor({"defaultEngine": "sglang", "engineLabelKey": "e"})
    sglang = extractor.mapping_for(Endpoint("a", "10.0.0.1", 1))
    vllm = extractor.mapping_for(Endpoint("b", "10.0.0.1", 1, labels={"e": "vllm"}))
    assert (sglang.engine, vllm.engine) == ("sglang", "vllm")


def test_partial_page_keeps_previous_values_and_names_the_missing_metric() -> None:
    previous = Metrics(waiting=1, running=4, kv_cache_usage=0.7, updated_at=1.0)
    page = b"vllm:num_requests_waiting 2\nvllm:kv_cache_usage_perc 0.3\n"
    mapping = CoreMetricsExtractor().mapping_for(endpoint())
    metrics, missing = mapping.extract(page, previous, NOW)
    assert metrics == Metrics(waiting=2, running=4, kv_cache_usage=0.3, updated_at=NOW)
    assert missing == ["vllm:num_requests_running"]


@pytest.mark.parametrize(
    ("page", "error"),
    [
        pytest.param(b"<html>not metrics</html>", ExtractError, id="no-core-metric"),
        pytest.param(vllm_page(VllmState()), ExtractError, id="wrong-engine"),
        pytest.param(b"sglang:num_queue_reqs many\n", ScanError, id="malformed-wanted-line"),
    ],
)
def test_bad_pages_raise(page: bytes, error: type[Exception]) -> None:
    mapping = CoreMetricsExtractor().mapping_for(endpoint("sglang"))
    with pytest.raises(error):
        mapping.extract(page, Metrics(), NOW)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param({"defaultEngine": "nope"}, "defaultEngine", id="unknown-default"),
        pytest.param({"engineConfig": []}, "engineConfig", id="unknown-field"),
        pytest.param({"engineConfigs": [{"name": "x", "kvUsageSpec": "a{b=~c}"}]}, "kvUsageSpec",
                     id="bad-spec-names-field"),
        pytest.param({"engineConfigs": [{"name": "x"}, {"name": "x"}]}, "unique", id="duplicate"),
    ],
)  # fmt: skip
def test_bad_parameters_are_refused_clearly(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _extractor(params)


def _extractor(params: dict[str, object]) -> CoreMetricsExtractor:
    return CoreMetricsExtractor.from_config("core-metrics-extractor", params, PluginHandle())
