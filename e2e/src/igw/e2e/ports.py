"""Where the local gateway's parts listen: `make run`'s fixed ports, or ports reserved for tests.

Each ext_proc service has two slots (a and b, `igw.e2e.supervisor.Slot`): the second is used only
while a rolling restart runs the new process beside the old one.

`GatewayPorts.free()` (tests, `igw-local run --free-ports`) does not pick ports that are free now
and let the children bind them later, when someone else may have taken one (issue 13 item 6): it
*holds* each port (`igw.common.testing.ports.hold_port`) for as long as the `GatewayPorts` and its
copies live, so nobody else can take one, while the children bind beside the hold. A restarted
child binds its held port again, so restarts cannot lose their ports either.
Ports can't be port 0 and read back here: Envoy's config must name both slots of each service
before the second ever runs.
"""

from __future__ import annotations

import dataclasses
import os
import socket

from igw.common.testing.ports import hold_consecutive, hold_port
from igw.e2e import pool
from igw.e2e.supervisor import Slot

__all__ = ["GatewayPorts", "PortHolds", "check_free"]


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
    held: PortHolds | None = dataclasses.field(default=None, compare=False, repr=False)
    """What holds the ports of `free()` (module docstring), shared by copies (`replace`)."""

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
        """Ports held for this gateway (module docstring), the pool's consecutive."""
        names = [f.name for f in dataclasses.fields(cls) if f.name not in ("sim_first", "held")]
        held = [hold_port("127.0.0.1") for _ in names]
        pool_block = hold_consecutive(pool.SIM_PORTS, "0.0.0.0")
        singles = {name: sock.getsockname()[1] for name, sock in zip(names, held, strict=True)}
        first = pool_block[0].getsockname()[1]
        return cls(sim_first=first, held=PortHolds([*held, *pool_block]), **singles)

    def release(self) -> None:
        """Let the held ports go now (they go anyway when no copy of this object is left)."""
        if self.held is not None:
            self.held.close()


class PortHolds:
    """The sockets holding a gateway's ports; closed by `close()` or when collected."""

    def __init__(self, sockets: list[socket.socket]) -> None:
        self._sockets = sockets

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()

    def __del__(self) -> None:
        self.close()


def _bindable(port: int, host: str = "0.0.0.0") -> bool:
    """Whether a server could listen on `port` now (like servers, lingering TIME_WAITs and our
    own holds are ok)."""
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
        if field.name not in ("sim_first", "held")
        and not _bindable(getattr(ports, field.name), "127.0.0.1")
    ]
    taken += [f"simulator :{port}" for port in ports.sim_ports if not _bindable(port)]
    if taken:
        raise RuntimeError(
            f"ports in use: {', '.join(taken)}; is another local gateway running? "
            "(IGW_PORT moves the listener)"
        )
