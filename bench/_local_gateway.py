"""Starting `make run`'s gateway (`igw.e2e.gateway.LocalGateway`) on free ports, for benchmarks.

`GatewayPorts.free()` picks ports that the children bind a moment later, so on a busy machine
another process can take one in between (issue 13 item 6) and a child fails to start. A
benchmark then retries on fresh ports, each attempt in a directory of its own so that the failed
attempt's logs stay readable.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import uvloop

from bench._paths import command_line
from igw.e2e.gateway import GatewayPorts, LocalGateway

__all__ = ["START_ATTEMPTS", "main", "start_gateway"]

_Args = TypeVar("_Args")

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


def main(
    module: str,
    argv: Sequence[str] | None,
    parse_args: Callable[[list[str]], _Args],
    run: Callable[[_Args, str], Coroutine[Any, Any, int]],
) -> int:
    """A gateway benchmark's `main`: `run(args, command line)` on uvloop, with no OTEL_ variable
    reaching the gateway's processes (they would export spans); Ctrl-C exits 130."""
    args_in = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(args_in)
    for key in [k for k in os.environ if k.startswith("OTEL_")]:
        del os.environ[key]
    try:
        return uvloop.run(run(args, command_line(["python", "-m", module, *args_in])))
    except KeyboardInterrupt:
        return 130
