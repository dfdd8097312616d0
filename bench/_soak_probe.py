"""Each gateway process's resident memory and open file descriptors, read from /proc.

The processes are `LocalGateway`'s: Envoy (`gateway.envoy.pid`) and each supervised service's
current process (`gateway.sim`, `.epp`, `.bbr`; the simulator runs every pod in one process,
`igw.e2e.pool`). Their PIDs are read again at every sample, so a service the supervisor
restarted is followed (and the new PID recorded); a process that is gone is sampled as absent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from igw.e2e.gateway import LocalGateway
from igw.e2e.processes import ChildProcess

__all__ = ["Reading", "gateway_pids", "read", "sample"]


@dataclass(frozen=True, slots=True)
class Reading:
    """One process at one moment."""

    pid: int
    rss_kib: int
    """VmRSS from /proc/PID/status."""
    fds: int
    """Entries of /proc/PID/fd."""


def read(pid: int) -> Reading | None:
    """`pid`'s reading, or None when it has gone (or is a zombie without memory)."""
    try:
        with Path(f"/proc/{pid}/status").open() as status:
            rss = next((line for line in status if line.startswith("VmRSS:")), None)
        fds = sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return None
    if rss is None:
        return None
    return Reading(pid, int(rss.split()[1]), fds)


def gateway_pids(gateway: LocalGateway) -> dict[str, Callable[[], int | None]]:
    """Process name -> how to find its current PID (module docstring)."""

    def service(name: str) -> Callable[[], int | None]:
        def current() -> int | None:
            child: ChildProcess = getattr(gateway, name)
            return None if child.process is None else child.process.pid

        return current

    def envoy() -> int | None:
        return None if gateway.envoy is None else gateway.envoy.pid

    return {"envoy": envoy, "bbr": service("bbr"), "epp": service("epp"), "sim": service("sim")}


def sample(pids: Mapping[str, Callable[[], int | None]]) -> dict[str, Reading | None]:
    """Every process's reading now."""
    out: dict[str, Reading | None] = {}
    for name, find in pids.items():
        pid = find()
        out[name] = None if pid is None else read(pid)
    return out
