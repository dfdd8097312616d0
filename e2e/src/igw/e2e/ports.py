"""Where the local gateway's parts listen: `make run`'s fixed ports, or ports picked for tests.

Each ext_proc service has two slots (a and b, `igw.e2e.supervisor.Slot`): the second is used only
while a rolling restart runs the new process beside the old one.

Known limit (issue 13 item 6): `GatewayPorts.free()` asks the kernel for free ports, closes them
and lets the children bind them later, so a busy machine can, rarely, hand one to someone else in
between; the children would then fail to start with "address in use".
"""

from __future__ import annotations

import dataclasses
import os
import socket

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
        """Ports picked by the kernel (for tests running side by side), the pool's consecutive."""
        names = [f.name for f in dataclasses.fields(cls) if f.name != "sim_first"]
        socks = [socket.socket() for _ in names]
        try:
            for sock in socks:
                sock.bind(("127.0.0.1", 0))
            singles = [sock.getsockname()[1] for sock in socks]
        finally:
            for sock in socks:
                sock.close()
        first = _free_port_block(pool.SIM_PORTS, avoid=set(singles))
        return cls(sim_first=first, **dict(zip(names, singles, strict=True)))


def _free_port_block(size: int, avoid: set[int]) -> int:
    """The first of `size` consecutive ports that are free on every address the pool binds."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = int(probe.getsockname()[1])
        block = range(first, first + size)
        if block[-1] < 65536 and not avoid.intersection(block) and all(map(_bindable, block)):
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
