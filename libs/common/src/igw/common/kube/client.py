"""Where a service finds its Kubernetes API: the client configuration and the namespace to watch.

`load_kube_client()` builds an official-client `ApiClient` from the in-cluster service account,
else from the kubeconfig (`$KUBECONFIG`, else `~/.kube/config`), both read at call time so a test
or a CLI can point it elsewhere. The caller owns the returned client and closes it after every
user of it (an `Informer`, say) has stopped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import kubernetes

__all__ = ["KubeClientConfigError", "load_kube_client", "namespace_from_env"]


class KubeClientConfigError(RuntimeError):
    """Neither an in-cluster service account nor a kubeconfig is available."""


def load_kube_client() -> kubernetes.client.ApiClient:
    """An `ApiClient` from the in-cluster service account, else from the kubeconfig.

    The kubeconfig is `$KUBECONFIG` (read now, not when the client library was imported), else
    `~/.kube/config`. Raises `KubeClientConfigError` when neither source works.
    """
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]  # untyped client API
    except kubernetes.config.ConfigException as in_cluster:
        kubeconfig = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
        try:
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]  # untyped client API
                config_file=kubeconfig, client_configuration=configuration
            )
        except (kubernetes.config.ConfigException, OSError) as error:
            raise KubeClientConfigError(
                "cannot reach the Kubernetes API: not running in a cluster "
                f"({in_cluster}) and no usable kubeconfig at {kubeconfig} ({error}); set KUBECONFIG"
            ) from error
    return kubernetes.client.ApiClient(configuration)


def namespace_from_env(environ: Mapping[str, str] = os.environ) -> str | None:
    """The namespace to watch from env `NAMESPACE`; `None` (all namespaces) when unset or empty."""
    return environ.get("NAMESPACE") or None
