"""Reading InferencePools and pods into endpoints, as upstream's datastore does."""

from __future__ import annotations

from typing import Any

import pytest

from igw.epp.discovery.pool import PoolSpec, pod_endpoints, pod_is_ready, pool_from_object
from igw.epp.testing.kube_objects import inference_pool, legacy_inference_pool, pod

POOL = PoolSpec("p", "ns", {"app": "vllm"}, (8000, 8001))


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            inference_pool("p", {"app": "vllm"}, [8000, 8001]),
            PoolSpec("p", "ns", {"app": "vllm"}, (8000, 8001),
                     picker={"name": "epp", "port": {"number": 9002}}),
            id="v1",
        ),
        pytest.param(
            legacy_inference_pool("p", {"app": "vllm"}, 8000),
            PoolSpec("p", "ns", {"app": "vllm"}, (8000,), picker={"name": "epp"}),
            id="v1alpha2",
        ),
        pytest.param(
            inference_pool("p", {"app": "vllm"}, [8000], app_protocol="kubernetes.io/h2c"),
            PoolSpec("p", "ns", {"app": "vllm"}, (8000,), "kubernetes.io/h2c",
                     picker={"name": "epp", "port": {"number": 9002}}),
            id="h2c",
        ),
    ],
)  # fmt: skip
def test_pools_are_read_in_both_api_versions(obj: dict[str, Any], expected: PoolSpec) -> None:
    assert pool_from_object(obj) == expected


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(inference_pool("p", {"app": "x"}, [8000, 8000]), id="duplicate-ports"),
        pytest.param(inference_pool("p", {"app": "x"}, list(range(8000, 8009))), id="nine-ports"),
        pytest.param(inference_pool("p", {"app": "x"}, [0]), id="port-zero"),
        pytest.param(inference_pool("p", {"app": "x"}, []), id="no-ports"),
        pytest.param({"metadata": {"name": "p"}, "spec": "nonsense"}, id="bad-spec"),
        pytest.param(inference_pool("p", {"app": "x"}, [8000], deleting=True), id="deleting"),
    ],
)
def test_unreadable_or_deleting_pools_are_none(obj: dict[str, Any]) -> None:
    assert pool_from_object(obj) is None


def test_a_ready_matching_pod_serves_one_endpoint_per_target_port() -> None:
    endpoints = pod_endpoints(pod("vllm-0", "10.0.0.5", {"app": "vllm", "x": "y"}), POOL)
    assert [(e.name, e.address, e.port, e.pod, e.rank, e.namespace) for e in endpoints] == [
        ("vllm-0-rank-0", "10.0.0.5", 8000, "vllm-0", 0, "ns"),
        ("vllm-0-rank-1", "10.0.0.5", 8001, "vllm-0", 1, "ns"),
    ]
    assert endpoints[0].labels == {"app": "vllm", "x": "y"}
    assert endpoints[0].metrics_port is None


@pytest.mark.parametrize(
    ("annotation", "ranks"),
    [
        pytest.param("8001", [1], id="second-only"),
        pytest.param(" 8000 , 9999,abc", [0], id="unknown-entries-ignored"),
        pytest.param("", [], id="empty-none-active"),
    ],
)
def test_the_active_ports_annotation_keeps_rank_numbers(annotation: str, ranks: list[int]) -> None:
    p = pod("vllm-0", "10.0.0.5", {"app": "vllm"}, active_ports=annotation)
    assert [e.rank for e in pod_endpoints(p, POOL)] == ranks


@pytest.mark.parametrize(
    "p",
    [
        pytest.param(pod("a", "10.0.0.1", {"app": "other"}), id="labels-do-not-match"),
        pytest.param(pod("a", "10.0.0.1", {"app": "vllm"}, ready=False), id="not-ready"),
        pytest.param(pod("a", "10.0.0.1", {"app": "vllm"}, deleting=True), id="terminating"),
        pytest.param(pod("a", "", {"app": "vllm"}), id="no-ip-yet"),
        pytest.param(pod("a", "10.0.0.1", {"app": "vllm"}, conditions=False), id="no-conditions"),
    ],
)
def test_pods_that_must_not_serve_have_no_endpoints(p: dict[str, Any]) -> None:
    assert pod_endpoints(p, POOL) == []


def test_ready_means_not_deleting_and_ready_true() -> None:
    assert pod_is_ready(pod("a", "10.0.0.1", {}))
    assert not pod_is_ready(pod("a", "10.0.0.1", {}, deleting=True))


def test_the_deprecated_metrics_port_applies_to_single_port_pools_only() -> None:
    single = PoolSpec("p", "ns", {"app": "vllm"}, (8000,))
    p = pod("vllm-0", "10.0.0.5", {"app": "vllm"})
    assert [e.metrics_port for e in pod_endpoints(p, single, metrics_port=9100)] == [9100]
    assert [e.metrics_port for e in pod_endpoints(p, POOL, metrics_port=9100)] == [None, None]
