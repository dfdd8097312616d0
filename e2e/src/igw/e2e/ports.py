"""Where the local gateway's parts listen: `make run`'s fixed ports, or ports picked for tests.

Each ext_proc service has two slots (a and b, `igw.e2e.supervisor.Slot`): the second is used only
while a rolling restart runs the new process beside the old one.

Known limit (issue 13 item 6): `GatewayPorts.free()` picks ports that are free now and lets the
children bind them later, so someone else can take one in between; the children would then fail
to start with "address in use". To make that rare it picks them at random *below* the kernel's
ephemeral range (`ip_local_port_range`, 32768-60999 by default): ports the kernel hands out for
`bind(0)` and outgoing connections, which a loaded machine running many tests and clients
recycles within milliseconds (a gateway once lost its simulator's port that way). The real fix,
binding port 0 in each child and reading the port back, needs Envoy's clusters to learn ports at
run time (EDS); not done.
"""

from __future__ import annotations

import dataclasses
import os
import random
import socket
from pathlib import Path

from igw.e2e import pool
from igw.e2e.supervisor import Slot

__all__ = ["GatewayPorts", "check_free"]


@dataclasses.dataclass(frozen=True, slots=True)
class GatewayPorts:
    """Where each part listens; the defaults are `make run`'s fixed, documented ports."""

    listen: int = 8080
    admin: int = 9901
    epp_grpc: int = 9002
    epp_health: int = 9003
    epp_metrics: int = 9090
    bbr_grpc: int = 9004
    bbr_health: int = 9005
    bbr_metrics: int = 9091
    sim_first: int = 8000
    """The pool takes `pool.SIM_PORTS` consecutive ports from here."""
    epp_grpc_b: int = 9012
    epp_health_b: int = 9013
    epp_metrics_b: int = 9092
    bbr_grpc_b: int = 9014
    bbr_health_b: int = 9015
    bbr_metrics_b: int = 9093
    """Slot b of each service: its ports while a rolling restart runs there (module docstring)."""

    @property
    def epp_slots(self) -> tuple[Slot, Slot]:
        return (
            Slot("a", self.epp_grpc, self.epp_health, self.epp_metrics),
            Slot("b", self.epp_grpc_b, self.epp_health_b, self.epp_metrics_b),
        )

    @property
    def bbr_slots(self) -> tuple[Slot, Slot]:
        return (
            Slot("a", self.bbr_grpc, self.bbr_health, self.bbr_metrics),
            Slot("b", self.bbr_grpc_b, self.bbr_health_b, self.bbr_metrics_b),
        )

    @property
    def sim_ports(self) -> range:
        return range(self.sim_first, self.sim_first + pool.SIM_PORTS)

    @classmethod
    def from_env(cls) -> GatewayPorts:
        """Defaults, with the listener on `IGW_PORT` when it is set."""
        port = os.environ.get("IGW_PORT")
        return cls(listen=int(port)) if port else cls()

    @classmethod
    def free(cls) -> GatewayPorts:
        """Free ports below the ephemeral range (module docstring), the pool's consecutive."""
        names = [f.name for f in dataclasses.fields(cls) if f.name != "sim_first"]
        taken: set[int] = set()
        singles = [_free_port_block(1, taken) for _ in names]
        first = _free_port_block(pool.SIM_PORTS, taken)
        return cls(sim_first=first, **dict(zip(names, singles, strict=True)))


_LOWEST = 10_000


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (32768 when it cannot be read)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768
    return low if low > _LOWEST + 1000 else 32768


def _free_port_block(size: int, taken: set[int]) -> int:
    """The first of `size` consecutive ports, free on every address the pool binds and not in
    `taken` (which it joins), at random between 10000 and the ephemeral range."""
    rng = random.SystemRandom()
    high = _ephemeral_low() - size
    for _ in range(500):
        block = range(first := rng.randrange(_LOWEST, high), first + size)
        free = all(_bindable(port) and _bindable(port, "127.0.0.1") for port in block)
        if free and not taken.intersection(block):
            taken.update(block)
            return first
    raise RuntimeError(f"found no {size} consecutive free ports")


def _bindable(port: int, host: str = "0.0.0.0") -> bool:
    """Whether a server could listen on `port` now (like servers, lingering TIME_WAITs are ok)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def check_free(ports: GatewayPorts) -> None:
    """Raise a clear error when a port is taken (often: another `make run` is still running)."""
    taken = [
        f"{field.name.replace('_', ' ')} :{getattr(ports, field.name)}"
        for field in dataclasses.fields(ports)
        if field.name != "sim_first" and not _bindable(getattr(ports, field.name), "127.0.0.1")
    ]
    taken += [f"simulator :{port}" for port in ports.sim_ports if not _bindable(port)]
    if taken:
        raise RuntimeError(
            f"ports in use: {', '.join(taken)}; is another local gateway running? "
            "(IGW_PORT moves the listener)"
        )
