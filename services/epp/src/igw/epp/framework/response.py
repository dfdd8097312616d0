"""`Response`: what the response plugins see of a response (upstream's `requestcontrol.Response`).

One `Response` is built per request when its headers arrive, and only when response plugins are
configured. ResponseHeader plugins may change `headers` (the changes reach the client);
ResponseBody plugins see it once per body chunk, with `usage` filled in when the parser found it,
and may add `dynamic_metadata`, which Envoy receives with the response's last chunk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from igw.epp.framework.parsing import Usage

__all__ = ["Response"]


@dataclass(slots=True)
class Response:
    """One request's response as its plugins see it; owned by that request's stream."""

    request_id: str
    headers: dict[str, str]
    """The response headers (lower-case names). ResponseHeader plugins may set, change or delete
    entries; the difference is sent to Envoy and the client sees it. Pseudo-headers (`:status`)
    are read-only."""
    req_metadata: Mapping[str, Any] = field(default_factory=dict)
    """Envoy's `metadata_context.filter_metadata` on the response headers, by namespace (e.g.
    `envoy.lb/x-gateway-destination-endpoint-served`)."""
    start_of_stream: bool = False
    """True for the body's first chunk."""
    end_of_stream: bool = False
    """True for the body's last call; exactly one call has it (also when the client went away)."""
    usage: Usage | None = None
    """The token usage once the parser has found it; always present at the end when reported."""
    dynamic_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Namespace -> fields for Envoy's dynamic metadata; sent with the last body reply."""

    def set_metadata(self, namespace: str, key: str, value: Any) -> None:
        """Adds one dynamic metadata field, keeping the namespace's other fields."""
        self.dynamic_metadata.setdefault(namespace, {})[key] = value
