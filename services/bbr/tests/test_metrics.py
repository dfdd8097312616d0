"""igw.bbr.metrics: upstream GIE's BBR metric names, types and labels, per-instance registries."""

from __future__ import annotations

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from igw.bbr.metrics import BbrMetrics


def exposition(metrics: BbrMetrics) -> dict[str, list[Sample]]:
    """Family name -> samples, parsed from the text /metrics would serve."""
    text = prometheus_client.generate_latest(metrics.registry).decode()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def families(metrics: BbrMetrics) -> dict[str, str]:
    text = prometheus_client.generate_latest(metrics.registry).decode()
    return {family.name: family.type for family in text_string_to_metric_families(text)}


def exercised() -> BbrMetrics:
    """Metrics with one observation each, so labelled families have samples to show."""
    metrics = BbrMetrics(version="v1.2.3")
    metrics.success.inc()
    metrics.body_field_not_found.labels("model").inc()
    metrics.body_field_empty.labels("model").inc()
    metrics.plugin_duration.labels("request", "body-field-to-header", "copy").observe(2e-6)
    return metrics


@pytest.mark.parametrize(
    ("family", "kind"),
    [
        pytest.param("bbr_info", "gauge", id="info"),
        pytest.param("bbr_success", "counter", id="success"),
        pytest.param("bbr_body_field_not_found", "counter", id="not-found"),
        pytest.param("bbr_body_field_empty", "counter", id="empty"),
        pytest.param("bbr_plugin_duration_seconds", "histogram", id="plugin-duration"),
    ],
)
def test_upstream_families_and_types(family: str, kind: str) -> None:
    assert families(exercised())[family] == kind


@pytest.mark.parametrize(
    ("sample", "labels"),
    [
        pytest.param("bbr_info", {"commit": "v1.2.3", "build_ref": "v1.2.3"}, id="info"),
        pytest.param("bbr_success_total", {}, id="success"),
        pytest.param("bbr_body_field_not_found_total", {"field": "model"}, id="not-found"),
        pytest.param("bbr_body_field_empty_total", {"field": "model"}, id="empty"),
        pytest.param(
            "bbr_plugin_duration_seconds_count",
            {
                "extension_point": "request",
                "plugin_type": "body-field-to-header",
                "plugin_name": "copy",
            },
            id="plugin-duration",
        ),
    ],
)
def test_upstream_sample_names_and_labels(sample: str, labels: dict[str, str]) -> None:
    samples = [s for samples in exposition(exercised()).values() for s in samples]
    matching = [s for s in samples if s.name == sample and s.labels == labels]
    assert [s.value for s in matching] == [1.0]


def test_info_is_exposed_before_any_request() -> None:
    samples = exposition(BbrMetrics())
    assert [(s.labels, s.value) for s in samples["bbr_info"]] == [
        ({"commit": "dev", "build_ref": "dev"}, 1.0)
    ]
    assert [s.value for s in samples["bbr_success"] if s.name == "bbr_success_total"] == [0.0]


def test_plugin_durations_land_in_microsecond_buckets() -> None:
    metrics = exercised()
    buckets = {
        s.labels["le"]: s.value
        for s in exposition(metrics)["bbr_plugin_duration_seconds"]
        if s.name == "bbr_plugin_duration_seconds_bucket"
    }
    # 2 microseconds: above the 1 us bucket, inside the 5 us one.
    assert (buckets["1e-06"], buckets["5e-06"], buckets["+Inf"]) == (0.0, 1.0, 1.0)


def test_each_instance_has_its_own_registry() -> None:
    first, second = BbrMetrics(), BbrMetrics()
    first.success.inc(5)
    assert first.registry.get_sample_value("bbr_success_total") == 5
    assert second.registry.get_sample_value("bbr_success_total") == 0
    # Nothing lands in the process-wide default registry.
    assert prometheus_client.REGISTRY.get_sample_value("bbr_success_total") is None


def test_a_given_registry_is_used() -> None:
    registry = prometheus_client.CollectorRegistry()
    BbrMetrics(registry).success.inc()
    assert registry.get_sample_value("bbr_success_total") == 1
