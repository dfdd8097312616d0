"""Inventory: staleness by the threshold, and in-flight counts from the plugin that keeps them."""

from __future__ import annotations

import pytest

from igw.epp.admin.inventory import Inventory, find_inflight_reader
from igw.epp.config import load_config
from igw.epp.framework import CycleState, ProfileResult, SchedulingResult
from igw.epp.scheduling import InFlightLoad
from igw.epp.scheduling.plugins.inflight_load_producer import InflightLoadProducer
from igw.epp.testing.admin_fleet import StaticSource
from igw.epp.testing.builders import NOW, endpoint, request

WITH_INFLIGHT = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: inflight-load-producer
- type: queue-scorer
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer}
"""


@pytest.mark.parametrize(
    ("updated_at", "age", "stale"),
    [
        pytest.param(NOW - 1.9, 1.9, False, id="under-threshold"),
        pytest.param(NOW - 2.1, 2.1, True, id="over-threshold"),
        pytest.param(0.0, None, True, id="never-scraped"),
    ],
)
def test_staleness_by_threshold(updated_at: float, age: float | None, stale: bool) -> None:
    source = StaticSource([endpoint(updated_at=updated_at)])

    inventory = Inventory.collect(source, staleness_threshold_s=2.0, in_flight=None, now=NOW)

    [report] = inventory.endpoints
    assert report.age_s == (pytest.approx(age) if age is not None else None)
    assert report.stale is stale


def test_in_flight_counts_come_from_the_configured_tracker() -> None:
    config = load_config(WITH_INFLIGHT)
    producer = config.plugins["inflight-load-producer"]
    assert isinstance(producer, InflightLoadProducer)
    target = endpoint("pod-b-rank-0")
    result = SchedulingResult({"default": ProfileResult((target,))}, "default")
    producer.pre_request(request(request_id="r1", size_bytes=400), CycleState(), result)

    reader = find_inflight_reader(config.plugins)
    inventory = Inventory.collect(
        StaticSource([endpoint("pod-a-rank-0"), target]),
        staleness_threshold_s=2.0, in_flight=reader, now=NOW,
    )  # fmt: skip

    loads = {r.endpoint.name: r.in_flight for r in inventory.endpoints}
    assert loads == {"pod-a-rank-0": InFlightLoad(0, 0), "pod-b-rank-0": InFlightLoad(1, 250)}
    assert inventory.in_flight_tracked


def test_the_default_config_tracks_no_in_flight_requests() -> None:
    assert find_inflight_reader(load_config().plugins) is None
