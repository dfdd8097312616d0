"""Starting `make run`'s gateway (`igw.e2e.gateway.LocalGateway`) on free ports, for benchmarks.

`GatewayPorts.free()` picks ports that the children bind a moment later, so on a busy machine
another process can take one in between (issue 13 item 6) and a child fails to start. A
benchmark then retries on fresh ports, each attempt in a directory of its own so that the failed
attempt's logs stay readable.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from igw.e2e.gateway import GatewayPorts, LocalGateway

__all__ = ["START_ATTEMPTS", "start_gateway"]

START_ATTEMPTS = 3


async def start_gateway(
    make: Callable[[GatewayPorts, Path], LocalGateway],
    workdir: Path,
    attempts: int = START_ATTEMPTS,
) -> LocalGateway:
    """A started gateway `make(ports, workdir / "attempt-N")` after at most `attempts` tries,
    each on fresh free ports; the last attempt's error is raised."""
    for attempt in range(1, attempts + 1):
        gateway = make(GatewayPorts.free(), workdir / f"attempt-{attempt}")
        try:
            await gateway.start()
        except RuntimeError as e:
            print(f"   start attempt {attempt} failed: {str(e).splitlines()[0]}", flush=True)
            if attempt == attempts:
                raise
            continue
        return gateway
    raise AssertionError("unreachable")
