"""Finding the Kubernetes API: kubeconfig at call time, a clear error without one, the namespace."""

from __future__ import annotations

from pathlib import Path

import pytest

from igw.common.kube import KubeClientConfigError, load_kube_client, namespace_from_env


def test_load_kube_client_reads_a_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: ctx, context: {cluster: c, user: u}}]
current-context: ctx
"""
    )
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))

    client = load_kube_client()
    try:
        assert client.configuration.host == "http://127.0.0.1:6443"
    finally:
        client.close()  # type: ignore[no-untyped-call]  # untyped client API


def test_load_kube_client_without_any_configuration_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))

    with pytest.raises(
        KubeClientConfigError, match=r"not running in a cluster.*no usable kubeconfig at .*missing"
    ):
        load_kube_client()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({"NAMESPACE": "team-a"}, "team-a", id="set"),
        pytest.param({"NAMESPACE": ""}, None, id="empty-means-all"),
        pytest.param({}, None, id="unset-means-all"),
    ],
)
def test_namespace_from_env(environ: dict[str, str], expected: str | None) -> None:
    assert namespace_from_env(environ) == expected
