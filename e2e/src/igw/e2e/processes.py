"""Child processes of the local gateway: start, wait until ready, stop, leave nothing behind.

Every child is started with `PR_SET_PDEATHSIG(SIGTERM)`, so even if the launcher itself is killed
with SIGKILL its children follow it (Envoy sets the same on itself), and in a process group of its
own, so a terminal's Ctrl-C reaches only the launcher. A normal stop sends SIGTERM,
waits for the child's graceful shutdown, then SIGKILLs what is left.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from igw.common import deathsig

__all__ = ["ChildProcess", "wait_for_port"]


def wait_for_port(port: int, *, timeout_s: float, process: subprocess.Popen[bytes] | None) -> None:
    """Blocks until 127.0.0.1:`port` accepts connections; raises if `process` exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with status {process.returncode} before serving")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout_s:.0f} s")


class ChildProcess:
    """One service process whose output goes to `log_path`."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._process

    def start(self, *, ready_port: int, timeout_s: float = 30.0) -> None:
        """Spawn the process and block until it listens on `ready_port`."""
        self.spawn()
        self.wait_ready(ready_port, timeout_s=timeout_s)

    def spawn(self) -> None:
        """Start the process (on the calling thread: PDEATHSIG follows the forking thread)."""
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - our own entry points, no shell
                deathsig.wrap(self.argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: Ctrl-C reaches the launcher alone, which then stops the
                # children in order instead of all of them at once.
                process_group=0,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def wait_ready(self, port: int, *, timeout_s: float = 30.0) -> None:
        """Block until the spawned process listens on `port`; stop it and raise if it cannot."""
        try:
            wait_for_port(port, timeout_s=timeout_s, process=self._process)
        except (RuntimeError, TimeoutError) as e:
            self.stop()
            raise RuntimeError(f"{self.name} failed to start: {e}\n{self.log_tail()}") from None

    def stop(self, grace_s: float = 10.0) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])
