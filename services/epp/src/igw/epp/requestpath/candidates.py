"""Candidate endpoints for a request: the pool, narrowed by the proxy's subset hint (§1.5).

`metadata_context.filter_metadata["envoy.lb.subset_hint"]["x-gateway-destination-endpoint-subset"]`
lists `ip:port` strings. Absent namespace or key: every endpoint. An empty list: none (the caller
answers 503). Otherwise endpoints whose IP appears in the list are kept: the port is ignored, as
upstream's full EPP does (quirk #6, kept so existing gateways behave the same; a pod's
data-parallel ranks all match their pod's IP). Non-string entries are ignored. The hint comes from
the data plane (Envoy's metadata), never from client headers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from igw.epp.endpoints import EndpointState
from igw.epp.requestpath.headers import DESTINATION_SUBSET, SUBSET_NAMESPACE

__all__ = ["subset_candidates"]


def _host(entry: str) -> str:
    """The IP of `ip:port`, `[v6]:port` or a bare address."""
    if entry.startswith("["):
        return entry[1 : entry.find("]")] if "]" in entry else entry[1:]
    if entry.count(":") == 1:
        return entry.split(":", 1)[0]
    return entry  # a bare IPv4, or a bare IPv6 (several colons, no port)


def subset_candidates(
    endpoints: Sequence[EndpointState], metadata: Mapping[str, Any]
) -> Sequence[EndpointState]:
    """`endpoints` narrowed by the subset hint in `metadata` (filter metadata by namespace)."""
    hint = metadata.get(SUBSET_NAMESPACE)
    if not isinstance(hint, Mapping) or DESTINATION_SUBSET not in hint:
        return endpoints
    entries = hint[DESTINATION_SUBSET]
    if not isinstance(entries, list):
        return endpoints
    hosts = {_host(entry) for entry in entries if isinstance(entry, str)}
    return [state for state in endpoints if state.endpoint.address in hosts]
