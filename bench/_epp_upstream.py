"""The cheapest honest model servers for the EPP benchmarks: one Envoy answering on N ports.

Feasibility §2 measured with "a second Envoy that answers each port with a fixed
`direct_response`"; this is the same, plus what the EPP needs from a model server: every port
answers `GET /metrics` with the same realistic vLLM page (`igw.epp.testing.metrics_pages`,
~33 KB, idle: no queue, empty KV cache) and anything else with a fixed, small, non-streamed
chat-completions JSON. Each port is its own listener, so the EPP scrapes and picks among N
distinct endpoints, and Envoy's C++ keeps the upstream's CPU far below the processors' (it is
measured and reported anyway, as `upstream`).

With `delay_s`, Envoy's fault filter holds every non-`/metrics` answer that long: a model
server's time to first token, identical on every path, which sets the request rate of a closed
loop as real model servers do (the added-TTFT benchmark).

The bootstrap is written as plain JSON (Envoy reads it as such): the typed builder in
`igw.common.testing` makes only gateway listeners.
"""

from __future__ import annotations

from typing import Any

from igw.epp.testing.metrics_pages import vllm_page

_HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
_FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
_FAULT_NAME = "envoy.filters.http.fault"
COMPLETION = (
    b'{"id":"chatcmpl-bench","object":"chat.completion","created":0,'
    b'"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"message":'
    b'{"role":"assistant","content":"ok"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":500,"completion_tokens":1,"total_tokens":501}}'
)


def _address(port: int) -> dict[str, Any]:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def _route(prefix: str, body: bytes, content_type: str) -> dict[str, Any]:
    return {
        "match": {"prefix": prefix},
        "direct_response": {"status": 200, "body": {"inline_string": body.decode()}},
        "response_headers_to_add": [
            {"header": {"key": "content-type", "value": content_type},
             "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
        ],
    }  # fmt: skip


def _listener(port: int, page: bytes, delay_s: float | None) -> dict[str, Any]:
    routes = [
        _route("/metrics", page, "text/plain; version=0.0.4"),
        _route("/", COMPLETION, "application/json"),
    ]
    filters: list[dict[str, Any]] = [{"name": "router", "typed_config": {"@type": _ROUTER}}]
    if delay_s is not None:
        delay = {"fixed_delay": f"{delay_s:.3f}s", "percentage": {"numerator": 100}}
        filters.insert(0, {"name": _FAULT_NAME, "typed_config": {"@type": _FAULT, "delay": delay}})
        # The scrapes stay immediate: a route-level fault config without a delay.
        routes[0]["typed_per_filter_config"] = {_FAULT_NAME: {"@type": _FAULT}}
    manager = {
        "@type": _HCM + "HttpConnectionManager",
        "stat_prefix": f"upstream_{port}",
        "route_config": {
            "name": "fixed",
            "max_direct_response_body_size_bytes": len(page) + 1024,
            "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}],
        },
        "http_filters": filters,
    }
    return {
        "name": f"upstream_{port}",
        "address": _address(port),
        "filter_chains": [
            {"filters": [{"name": "envoy.filters.network.http_connection_manager",
                          "typed_config": manager}]}
        ],
    }  # fmt: skip


def upstream_bootstrap(
    admin_port: int, ports: list[int], delay_s: float | None = None
) -> dict[str, Any]:
    """One Envoy whose every port in `ports` is a fixed-answer model server."""
    page = vllm_page()
    return {
        "admin": {"address": _address(admin_port)},
        "static_resources": {"listeners": [_listener(port, page, delay_s) for port in ports]},
    }
