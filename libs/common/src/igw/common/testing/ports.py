"""Loopback ports for test servers, without picking a "free" port to bind later.

A port found free and released can be taken by anyone before its server binds it, and on a busy
machine the kernel hands recently freed ports out again within milliseconds (issue 13 item 6). So
tests bind port 0 and read the port back (every server here accepts 0: our services, Envoy through
`EnvoyProcess`, the echo and model-server fakes), and a test that needs a port where nothing
answers holds one bound without listening (`refused_port`): connections to it are refused, and no
one else can bind it while the test runs.

`free_port` remains for benchmarks that must name ports before their processes start; tests may
not use it (`tests/test_architecture.py` checks).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port held bound but not listening: connecting to it is refused, until exit."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def free_port() -> int:
    """Return a port on 127.0.0.1 that was free a moment ago (benchmarks only: module docstring)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
