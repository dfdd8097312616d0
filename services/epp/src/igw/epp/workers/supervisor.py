"""The parent of `igw-epp --workers N`: starts N worker processes and keeps them running.

The workers are new interpreters (`python -m igw.epp.cli ... --worker-index I --worker-dir D`),
never forks of this process: gRPC must not be forked once initialised, and a fresh interpreter
holds nothing of the parent's. Worker 0 starts first with the command line as given; once it
serves (its ready file `D/w0.json` names the ext_proc port it bound, which matters when the port
was 0) the others start on that same port (SO_REUSEPORT), their health on a port of their own
(0: any free one) and their Prometheus endpoint on `--metrics-port + I` (0 stays 0).

A worker that exits while the parent is not stopping is started again (same flags, and worker 0
on the port it had), at once the first time and after a growing pause (up to `MAX_BACKOFF_S`) if
it keeps dying within `STABLE_S`; a configuration error (exit 2) stops everything with that code.
SIGTERM or SIGINT is passed to every worker, each drains as a single EPP would, and the parent
exits when all have; a worker gets SIGTERM too if the parent dies without passing it on
(`die_with_parent`, PR_SET_PDEATHSIG). The parent itself runs no event loop and opens no socket.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import structlog

from igw.epp.workers.peers import WorkerRole

__all__ = ["Supervisor", "die_with_parent"]

_log = structlog.get_logger(__name__)

STABLE_S = 10.0
"""A worker that ran this long before dying is restarted at once."""
MAX_BACKOFF_S = 5.0
READY_TIMEOUT_S = 300.0
CONFIG_ERROR = 2
_PR_SET_PDEATHSIG = 1


@dataclass(slots=True)
class _Worker:
    index: int
    process: subprocess.Popen[bytes]
    started_at: float = field(default_factory=time.monotonic)
    failures: int = 0


class Supervisor:
    """Runs `count` workers of the EPP whose command line is `argv` (module docstring)."""

    def __init__(
        self, argv: Sequence[str], count: int, *, directory: Path | None, metrics_port: int
    ) -> None:
        if count < 2:
            raise ValueError("a supervisor runs at least 2 workers")
        self.argv = list(argv)
        self.count = count
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="igw-epp-workers-")
            directory = Path(self._tmp.name)
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.metrics_port = metrics_port
        self.grpc_port: int | None = None
        self.workers: dict[int, _Worker] = {}
        self.stopping = False

    def run(self) -> int:
        """Serves until SIGTERM/SIGINT (0) or a worker's configuration error (2)."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            self.workers[0] = _Worker(0, self._spawn(0))
            self.grpc_port = self._wait_ready(0)
            if self.grpc_port is None:
                return self._stop_all(self._exit_code(0))
            for index in range(1, self.count):
                self.workers[index] = _Worker(index, self._spawn(index))
            _log.info("epp.workers.started", workers=self.count, grpc_port=self.grpc_port)
            return self._supervise()
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()

    def _argv(self, index: int) -> list[str]:
        role = ["--worker-index", str(index), "--worker-dir", str(self.directory)]
        if index == 0 and self.grpc_port is None:
            return [*self.argv, *role]
        ports = ["--grpc-port", str(self.grpc_port)]
        if index > 0:
            metrics = self.metrics_port + index if self.metrics_port else 0
            ports += ["--grpc-health-port", "0", "--metrics-port", str(metrics)]
        return [*self.argv, *ports, *role]

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        role = WorkerRole(index, self.count, self.directory)
        role.ready_path(index).unlink(missing_ok=True)
        process = subprocess.Popen([sys.executable, "-m", "igw.epp.cli", *self._argv(index)])  # noqa: S603 - our own interpreter and flags
        _log.info("epp.workers.spawned", worker=index, pid=process.pid)
        return process

    def _wait_ready(self, index: int) -> int | None:
        """The ext_proc port worker `index` serves on, or None if it exited first."""
        path = WorkerRole(index, self.count, self.directory).ready_path(index)
        process = self.workers[index].process
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline and not self.stopping:
            if path.exists():
                return int(_read_port(path))
            if process.poll() is not None:
                return None
            time.sleep(0.05)  # a child's readiness: no event to wait on without a loop
        return None

    def _exit_code(self, index: int) -> int:
        code = self.workers[index].process.poll()
        return CONFIG_ERROR if code == CONFIG_ERROR else (0 if self.stopping else 1)

    def _supervise(self) -> int:
        while True:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                return 0
            worker = next((w for w in self.workers.values() if w.process.pid == pid), None)
            if worker is None:
                continue
            worker.process.returncode = os.waitstatus_to_exitcode(status)
            if self.stopping:
                if all(w.process.poll() is not None for w in self.workers.values()):
                    return 0
                continue
            if worker.process.returncode == CONFIG_ERROR:
                return self._stop_all(CONFIG_ERROR)
            self._restart(worker)

    def _restart(self, worker: _Worker) -> None:
        lived = time.monotonic() - worker.started_at
        failures = 0 if lived >= STABLE_S else worker.failures + 1
        _log.warning(
            "epp.workers.restarting",
            worker=worker.index, exit_code=worker.process.returncode, lived_s=round(lived, 1),
        )  # fmt: skip
        if failures > 1:
            time.sleep(min(MAX_BACKOFF_S, 0.1 * 2**failures))
        if self.stopping:
            return
        replacement = _Worker(worker.index, self._spawn(worker.index), failures=failures)
        self.workers[worker.index] = replacement

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002 - signal API
        self.stopping = True
        for worker in self.workers.values():
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)

    def _stop_all(self, code: int) -> int:
        self._on_signal(signal.SIGTERM, None)
        for worker in self.workers.values():
            worker.process.wait()
        return code


def die_with_parent() -> None:
    """In a worker: be sent SIGTERM when the parent dies, even by SIGKILL (Linux; elsewhere a
    no-op), so that no worker outlives its supervisor holding the port."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the call above
        os.kill(os.getpid(), signal.SIGTERM)


def _read_port(path: Path) -> int:
    return int(json.loads(path.read_text())["grpc_port"])
