"""Free TCP ports on the loopback interface for test servers."""

from __future__ import annotations

import socket


def free_port() -> int:
    """Return a port on 127.0.0.1 that was free a moment ago.

    The port is released before returning, so another process may take it first; tests that start
    several servers should ask once per server and tolerate the rare clash.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
