"""The gateway's routes: header matches in order, then the default cluster or a 404.

Private to `envoy_config`: it takes plain values (a route is `(header, value, cluster)`, value None
for "the header is absent"). A cluster named in `fallbacks` is an ORIGINAL_DST pool with a
fallback cluster: each route to it becomes two, the first for requests that carry the pool's
destination header (the EPP picked), the second, to the fallback, for those that do not (the EPP
failed open; `_envoy_failover`).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence

from envoy_data_plane.envoy.config.core.v3 import DataSource
from envoy_data_plane.envoy.config.route.v3 import (
    DirectResponseAction,
    HeaderMatcher,
    Route,
    RouteAction,
    RouteConfiguration,
    RouteMatch,
    VirtualHost,
)
from envoy_data_plane.envoy.type.matcher.v3 import StringMatcher

from igw.common.testing import _envoy_lua

NO_ROUTE_BODY = "no route matched the request's model (x-gateway-model-name)\n"

RouteSpec = tuple[str, str | None, str]
Fallback = tuple[str, str]
"""An ORIGINAL_DST pool's destination header and the name of its fallback cluster."""


def route_config(
    routes: Sequence[RouteSpec],
    default_cluster: str | None,
    fallbacks: Mapping[str, Fallback],
    timeout_s: float,
    *,
    served_endpoint: bool,
) -> RouteConfiguration:
    """One virtual host for every domain: `routes` in order, then the default (module doc)."""
    timeout = datetime.timedelta(seconds=timeout_s)
    matched = [
        route
        for header, value, cluster in routes
        for route in _routes_to(cluster, [_matcher(header, value)], fallbacks, timeout)
    ]
    last = (
        _routes_to(default_cluster, [], fallbacks, timeout)
        if default_cluster is not None
        else [_not_found()]
    )
    host = VirtualHost(
        name="all",
        domains=["*"],
        routes=[*matched, *last],
        response_headers_to_add=[_envoy_lua.served_endpoint_stamp()] if served_endpoint else [],
    )
    return RouteConfiguration(name="gateway", virtual_hosts=[host])


def _matcher(header: str, value: str | None) -> HeaderMatcher:
    if value is None:
        # present_match false would mean "absent" too, but a false oneof may not be rendered.
        return HeaderMatcher(name=header, present_match=True, invert_match=True)
    return HeaderMatcher(name=header, string_match=StringMatcher(exact=value))


def _routes_to(
    cluster: str,
    headers: list[HeaderMatcher],
    fallbacks: Mapping[str, Fallback],
    timeout: datetime.timedelta,
) -> list[Route]:
    if cluster not in fallbacks:
        return [_route(headers, cluster, timeout)]
    destination, fallback = fallbacks[cluster]
    picked = HeaderMatcher(name=destination, present_match=True)
    return [_route([*headers, picked], cluster, timeout), _route(headers, fallback, timeout)]


def _route(headers: list[HeaderMatcher], cluster: str, timeout: datetime.timedelta) -> Route:
    return Route(
        match=RouteMatch(prefix="/", headers=headers),
        route=RouteAction(cluster=cluster, timeout=timeout),
    )


def _not_found() -> Route:
    return Route(
        match=RouteMatch(prefix="/"),
        direct_response=DirectResponseAction(
            status=404, body=DataSource(inline_string=NO_ROUTE_BODY)
        ),
    )
