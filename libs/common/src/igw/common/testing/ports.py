"""Loopback ports for test servers, without picking a "free" port to bind later.

A port found free and released can be taken by anyone before its server binds it, and on a busy
machine the kernel hands recently freed ports out again within milliseconds (issue 13 item 6). So
tests bind port 0 and read the port back (every server here accepts 0: our services, Envoy through
`EnvoyProcess`, the echo and model-server fakes), and a test that needs a port where nothing
answers holds one bound without listening (`refused_port`): connections to it are refused, and no
one else can bind it while the test runs.

A port that must be known before its server starts (a config names it: Envoy's clusters, a
data-parallel server's consecutive rank ports) is *held* instead (`hold_port`,
`hold_consecutive`): bound, not listening, for as long as the socket stays open. The kernel never
hands a held port out (not to `bind(0)`, not to an outgoing connection) and nobody else can bind
it, while our servers can: they all set SO_REUSEADDR, and Linux lets a SO_REUSEADDR socket bind
beside a bound, non-listening one that also has it. The hold is taken exclusively first (bound
without SO_REUSEADDR, which fails if anyone has the port, even idle or in TIME_WAIT) and only then
gets SO_REUSEADDR, so two holders never share a port.

`free_port` remains for benchmarks that must name ports before their processes start; tests may
not use it (`tests/test_port_rules.py` checks).
"""

from __future__ import annotations

import contextlib
import random
import socket
from collections.abc import Iterator
from pathlib import Path

_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_DEFAULT_EPHEMERAL = (32768, 60999)
"""Linux's default, for a machine that does not say."""
_FIRST_UNPRIVILEGED = 10000
"""Where blocks below the ephemeral range are sought (well-known service ports stay clear)."""


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port held bound but not listening: connecting to it is refused, until exit."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def hold_port(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A socket holding `host:port` (0: a port the kernel picks) for a server of ours to bind
    (module docstring); OSError if the port is taken. The caller closes it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return sock


def hold_consecutive(size: int, host: str = "127.0.0.1") -> list[socket.socket]:
    """`size` consecutive ports held on `host` (module docstring); RuntimeError if none are found.

    The block is sought below the kernel's ephemeral range first: outgoing connections never take
    ports there, so a machine busy with short connections (every port of the ephemeral range in
    use or in TIME_WAIT now and then) still has whole free blocks. Then, as a fallback, a block
    starting at a port the kernel picks."""
    low, _ = ephemeral_range()
    rng = random.Random()  # noqa: S311 - spreading tries, not security
    room = low - size > _FIRST_UNPRIVILEGED
    starts = [rng.randrange(_FIRST_UNPRIVILEGED, low - size) for _ in range(200)] if room else []
    for start in starts:
        held = _try_hold_block(host, start, size)
        if held is not None:
            return held
    for _ in range(200):
        with contextlib.closing(hold_port(host)) as first:
            start = int(first.getsockname()[1])
        held = _try_hold_block(host, start, size) if start + size <= 65536 else None
        if held is not None:
            return held
    raise RuntimeError(f"found no {size} consecutive ports to hold on {host}")


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' ports (`ip_local_port_range`)."""
    try:
        low, high = (int(v) for v in _EPHEMERAL.read_text().split())
    except (OSError, ValueError):
        return _DEFAULT_EPHEMERAL
    return low, high


def _try_hold_block(host: str, start: int, size: int) -> list[socket.socket] | None:
    with contextlib.ExitStack() as attempt:
        try:
            held = [attempt.enter_context(hold_port(host, start + i)) for i in range(size)]
        except OSError:
            return None
        attempt.pop_all()
        return held


def free_port() -> int:
    """Return a port on 127.0.0.1 that was free a moment ago (benchmarks only: module docstring)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
