"""Lua HTTP filters, and the one the gateway adds itself: the served-endpoint report.

Private to `envoy_config`, which re-exports the two constants; like `_envoy_clusters` it takes
plain values.

The served-endpoint report (`served_endpoint_metadata=True`, upstream-gie.md §1.6): GIE wants the
gateway to tell the EPP, in the response messages' filter metadata, which endpoint served
(`envoy.lb/x-gateway-destination-endpoint-served`), and plain Envoy has no such feature. The router
stamps the upstream address it really connected to (`%UPSTREAM_REMOTE_ADDRESS%`, so a retry to a
fallback endpoint shows the fallback) on the response as an internal header; a Lua filter just in
front of the router moves it into that dynamic metadata and drops the header, before any ext_proc
filter sees the response. The EPP's filter then forwards `envoy.lb` (`forwarding_namespaces`).
"""

from __future__ import annotations

from envoy_data_plane.envoy.config.core.v3 import (
    DataSource,
    HeaderValue,
    HeaderValueOption,
    HeaderValueOptionHeaderAppendAction,
)
from envoy_data_plane.envoy.extensions.filters.http.lua.v3 import Lua
from envoy_data_plane.envoy.extensions.filters.network.http_connection_manager.v3 import (
    HttpFilter,
)

from igw.common.testing import _envoy_clusters

SERVED_ENDPOINT_HEADER = "x-igw-served-endpoint"
"""Internal: the upstream address the router stamps on a response for the Lua filter below."""
SERVED_ENDPOINT_LUA = f"""
function envoy_on_response(handle)
  local headers = handle:headers()
  local served = headers:get("{SERVED_ENDPOINT_HEADER}")
  if served ~= nil then
    headers:remove("{SERVED_ENDPOINT_HEADER}")
    if string.find(served, ":", 1, true) then
      handle:streamInfo():dynamicMetadata():set(
        "envoy.lb", "x-gateway-destination-endpoint-served", served)
    end
  end
end
"""
"""Moves the router's served-endpoint stamp into `envoy.lb` dynamic metadata (module docstring);
a direct response (no upstream) has no address and reports nothing."""


def lua_filter(name: str, source: str) -> HttpFilter:
    """An `envoy.filters.http.lua` filter named `lua.<name>` running `source`."""
    lua = Lua(default_source_code=DataSource(inline_string=source))
    return HttpFilter(name=f"lua.{name}", typed_config=_envoy_clusters.pack(lua))


def served_endpoint_filter() -> HttpFilter:
    """The filter that reports the stamp; it belongs last before the router, so that it runs
    first on the response path, ahead of every ext_proc filter."""
    return lua_filter("served-endpoint", SERVED_ENDPOINT_LUA)


def served_endpoint_stamp() -> HeaderValueOption:
    """The response header the router adds: the address of the upstream that really served."""
    return HeaderValueOption(
        header=HeaderValue(key=SERVED_ENDPOINT_HEADER, value="%UPSTREAM_REMOTE_ADDRESS%"),
        append_action=HeaderValueOptionHeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
    )
