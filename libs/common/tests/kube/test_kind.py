"""Which list function of the official client a `Kind` picks, per scope."""

from __future__ import annotations

from collections.abc import Iterator

import kubernetes
import pytest

from igw.common.kube import CONFIG_MAPS, PODS, Kind, core_kind, custom_kind

POOLS = custom_kind("inference.networking.k8s.io", "v1", "inferencepools")
NODES = core_kind("node", namespaced=False)


@pytest.fixture
def api_client() -> Iterator[kubernetes.client.ApiClient]:
    client = kubernetes.client.ApiClient(kubernetes.client.Configuration())
    yield client
    client.close()  # type: ignore[no-untyped-call]  # untyped client API


@pytest.mark.parametrize(
    ("kind", "namespace", "function", "args"),
    [
        pytest.param(PODS, "ns", "list_namespaced_pod", ("ns",), id="pods-namespaced"),
        pytest.param(PODS, None, "list_pod_for_all_namespaces", (), id="pods-all"),
        pytest.param(CONFIG_MAPS, "ns", "list_namespaced_config_map", ("ns",), id="configmaps"),
        pytest.param(NODES, None, "list_node", (), id="cluster-scoped-core"),
        pytest.param(
            POOLS,
            "ns",
            "list_namespaced_custom_object",
            ("inference.networking.k8s.io", "v1", "ns", "inferencepools"),
            id="custom-namespaced",
        ),
        pytest.param(
            POOLS,
            None,
            "list_cluster_custom_object",
            ("inference.networking.k8s.io", "v1", "inferencepools"),
            id="custom-all",
        ),
    ],
)
def test_list_call_picks_the_client_function(
    api_client: kubernetes.client.ApiClient,
    kind: Kind,
    namespace: str | None,
    function: str,
    args: tuple[str, ...],
) -> None:
    chosen, chosen_args = kind.list_call(api_client, namespace)

    assert chosen.__name__ == function
    assert chosen_args == args


@pytest.mark.parametrize(
    ("kind", "namespace", "message"),
    [
        pytest.param(NODES, "ns", "cluster-scoped", id="namespace-on-cluster-scoped"),
        pytest.param(core_kind("no_such_thing"), "ns", "no CoreV1Api", id="unknown-core-kind"),
    ],
)
def test_impossible_lists_are_refused(
    api_client: kubernetes.client.ApiClient, kind: Kind, namespace: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        kind.list_call(api_client, namespace)


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        pytest.param(PODS, "v1/pods", id="core"),
        pytest.param(CONFIG_MAPS, "v1/configmaps", id="core-two-words"),
        pytest.param(POOLS, "inferencepools.inference.networking.k8s.io", id="custom"),
    ],
)
def test_names_in_logs(kind: Kind, name: str) -> None:
    assert kind.name == name
