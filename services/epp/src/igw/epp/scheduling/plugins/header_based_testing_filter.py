"""`header-based-testing-filter` (for tests): keeps the endpoints named in a request header.

Header `test-epp-endpoint-selection` holds a comma-separated list of `ip` or `ip:port` (IPv6 in
brackets when a port follows: `[fd00::1]:8000`; bare `fd00::1` also works). The result follows
the header's order, without duplicates; an `ip` entry matches every port of that address. A
request without the header gets no endpoints, so its profile fails, as upstream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.framework.cycle_state import CycleState
from igw.epp.framework.params import ParameterlessPlugin

__all__ = ["TEST_ENDPOINT_HEADER", "HeaderBasedTestingFilter", "parse_selection"]

TEST_ENDPOINT_HEADER = "test-epp-endpoint-selection"


def parse_selection(value: str) -> list[tuple[str, int | None]]:
    """`(address, port or None)` per entry, in order; malformed entries are skipped."""
    entries: list[tuple[str, int | None]] = []
    for raw in value.split(","):
        item = raw.strip()
        if not item:
            continue
        host, port = item, ""
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        elif item.count(":") == 1:
            host, _, port = item.partition(":")
        if port and not port.isdigit():
            continue
        entries.append((host, int(port) if port else None))
    return entries


class HeaderBasedTestingFilter(ParameterlessPlugin):
    type_name: ClassVar[str] = "header-based-testing-filter"

    def filter(
        self,
        request: InferenceRequest,
        state: CycleState,  # noqa: ARG002 - protocol
        endpoints: Sequence[EndpointState],
    ) -> Sequence[EndpointState]:
        value = request.headers.get(TEST_ENDPOINT_HEADER)
        if not value:
            return []
        kept: list[EndpointState] = []
        seen: set[str] = set()
        for address, port in parse_selection(value):
            for e in endpoints:
                ep = e.endpoint
                if ep.address == address and port in (None, ep.port) and ep.name not in seen:
                    seen.add(ep.name)
                    kept.append(e)
        return kept
