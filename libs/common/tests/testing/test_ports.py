"""Held ports: nobody else can bind them, our servers can, and a consecutive block is found even
where outgoing connections churn through the ephemeral range."""

import socket

from igw.common.testing.ports import ephemeral_range, hold_consecutive


def _exclusive_bind_fails(port: int) -> bool:
    with socket.socket() as other:
        try:
            other.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def test_a_consecutive_block_is_held_for_our_servers_only() -> None:
    held = hold_consecutive(4)
    try:
        ports = [s.getsockname()[1] for s in held]
        assert ports == list(range(ports[0], ports[0] + 4))
        assert all(_exclusive_bind_fails(p) for p in ports)  # nobody else takes them
        with socket.socket() as server:  # a server of ours (SO_REUSEADDR) binds beside the hold
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", ports[2]))
            server.listen()
            with socket.create_connection(("127.0.0.1", ports[2]), timeout=5):
                pass
    finally:
        for s in held:
            s.close()


def test_the_block_lies_where_outgoing_connections_never_take_ports() -> None:
    low, _ = ephemeral_range()
    held = hold_consecutive(4)
    try:
        assert held[-1].getsockname()[1] < low
    finally:
        for s in held:
            s.close()
