"""Static discovery: the pool's endpoints from a local YAML file, for running without Kubernetes.

File format::

    endpoints:
      - name: sim-0                 # the pod name; unique in the file
        address: 127.0.0.1          # IP or host name
        port: 8000                  # one serving port ...
        ranks: 2                    # ... optionally N data-parallel ranks on ports 8000..8001
      - name: sim-1
        address: 127.0.0.1
        ports: [8010, 8011]         # ... or an explicit list of ranks' ports
        metricsPort: 9010           # optional, only with a single port (upstream's deprecated
                                    # --model-server-metrics-port); default: the serving port
        engineType: sglang          # optional: sets label inference.networking.k8s.io/engine-type
        labels: {app: sim}          # optional, string values

Each port of a pod becomes one endpoint named `<name>-rank-<i>` (upstream's data-parallel naming,
also for a single port), with `pod` = name and `rank` = i. An empty file or `endpoints: []` means
no endpoints. The file is validated as a whole: unknown fields, missing or mistyped values and
duplicate names reject it with `<path>:<line>:` in the message.

Lifecycle: `load()` reads the file and reconciles the target; at start-up a broken file raises
`StaticDiscoveryError` (a `ValueError`). `start()` then runs one asyncio task, owned by this
object, that polls the file's (mtime, size, inode) every `poll_interval_s`; the `stat`, the read
and the YAML parsing run in a worker thread (`asyncio.to_thread`) so the event loop never blocks
on the file system, while `reconcile()` runs on the loop as the datastore requires. A change that
does not parse, or a file that vanishes, keeps the previous endpoints and logs one error per
change. `stop()` cancels the task and waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import structlog
import yaml

from igw.epp.endpoints import ENGINE_TYPE_LABEL, Endpoint

__all__ = ["Reconciler", "StaticDiscovery", "StaticDiscoveryError", "parse_endpoints_file"]

_FIELDS = frozenset({"name", "address", "port", "ports", "ranks", "metricsPort", "engineType",
                     "labels"})  # fmt: skip

_log = structlog.get_logger(__name__)


class StaticDiscoveryError(ValueError):
    """The endpoints file cannot be read or is invalid; the message names the file and line."""


class Reconciler(Protocol):
    """What static discovery feeds: the datastore's level-triggered `reconcile`."""

    def reconcile(self, endpoints: Sequence[Endpoint]) -> None: ...


def parse_endpoints_file(text: str, path: Path) -> list[Endpoint]:
    """Every endpoint the file declares, in order; raises `StaticDiscoveryError`."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise StaticDiscoveryError(f"{where}: invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise StaticDiscoveryError(f"{path}: invalid YAML: {exc}") from None
    if node is None:
        return []
    data = yaml.SafeLoader("").construct_document(node)
    if not isinstance(data, dict) or set(data) - {"endpoints"}:
        raise StaticDiscoveryError(f"{path}:1: expected a mapping with only an `endpoints:` list")
    items = data.get("endpoints")
    items = [] if items is None else items
    if not isinstance(items, list):
        raise StaticDiscoveryError(f"{path}:1: endpoints must be a list")
    endpoints: list[Endpoint] = []
    pods: set[str] = set()
    for index, (item, line) in enumerate(zip(items, _item_lines(node), strict=True)):
        where = f"{path}:{line}: endpoint {index}"
        pod_endpoints = _pod_endpoints(item, where)
        if pod_endpoints[0].pod in pods:
            raise StaticDiscoveryError(f"{where}: name {pod_endpoints[0].pod!r} is used twice")
        pods.add(pod_endpoints[0].pod)
        endpoints.extend(pod_endpoints)
    return endpoints


def _item_lines(node: yaml.Node) -> list[int]:
    for key, value in node.value if isinstance(node, yaml.MappingNode) else ():
        if key.value == "endpoints" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _pod_endpoints(item: object, where: str) -> list[Endpoint]:
    if not isinstance(item, dict):
        raise StaticDiscoveryError(f"{where}: must be a mapping with name, address and port(s)")
    unknown = sorted(str(key) for key in set(item) - _FIELDS)
    if unknown:
        allowed = ", ".join(sorted(_FIELDS))
        raise StaticDiscoveryError(f"{where}: unknown field(s) {unknown}; allowed: {allowed}")
    name, address = item.get("name"), item.get("address")
    if not isinstance(name, str) or not name:
        raise StaticDiscoveryError(f"{where}: name must be a non-empty string")
    where = f"{where} ({name})"
    if not isinstance(address, str) or not address:
        raise StaticDiscoveryError(f"{where}: address must be a non-empty string")
    ports = _ports(item, where)
    metrics_port = item.get("metricsPort")
    if metrics_port is not None and (len(ports) != 1 or not _is_port(metrics_port)):
        raise StaticDiscoveryError(f"{where}: metricsPort must be a port, with a single port")
    labels = _labels(item, where)
    return [
        Endpoint(
            f"{name}-rank-{rank}",
            address,
            port,
            pod=name,
            rank=rank,
            labels=labels,
            metrics_port=metrics_port,
        )
        for rank, port in enumerate(ports)
    ]


def _ports(item: dict[str, Any], where: str) -> list[int]:
    if ("port" in item) == ("ports" in item):
        raise StaticDiscoveryError(f"{where}: give one of port (and optional ranks) or ports")
    if "ports" in item:
        ports = item["ports"]
        if "ranks" in item or not isinstance(ports, list) or not ports:
            raise StaticDiscoveryError(f"{where}: ports must be a non-empty list (without ranks)")
    else:
        ranks = item.get("ranks", 1)
        if not isinstance(ranks, int) or isinstance(ranks, bool) or not 1 <= ranks <= 64:
            raise StaticDiscoveryError(f"{where}: ranks must be an integer from 1 to 64")
        first = item["port"]
        ports = [first + rank for rank in range(ranks)] if _is_port(first) else [first]
    if not all(_is_port(port) for port in ports):
        raise StaticDiscoveryError(f"{where}: ports must be integers from 1 to 65535, got {ports}")
    if len(set(ports)) != len(ports):
        raise StaticDiscoveryError(f"{where}: a port is listed twice: {ports}")
    return list(ports)


def _labels(item: dict[str, Any], where: str) -> dict[str, str]:
    labels = item.get("labels") or {}
    if not isinstance(labels, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in labels.items()
    ):
        raise StaticDiscoveryError(f"{where}: labels must map strings to strings (quote values)")
    engine = item.get("engineType")
    if engine is not None:
        if not isinstance(engine, str) or not engine:
            raise StaticDiscoveryError(f"{where}: engineType must be a non-empty string")
        if labels.get(ENGINE_TYPE_LABEL, engine) != engine:
            raise StaticDiscoveryError(f"{where}: engineType disagrees with its label in labels")
        labels = {**labels, ENGINE_TYPE_LABEL: engine}
    return dict(labels)


def _is_port(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


class StaticDiscovery:
    """Keeps a `Reconciler` (the datastore) in step with an endpoints file."""

    def __init__(self, path: Path, target: Reconciler, *, poll_interval_s: float = 1.0) -> None:
        self.path = path
        self._target = target
        self._poll_interval_s = poll_interval_s
        self._signature: tuple[int, int, int] | None = None  # last state seen, loaded or not
        self._task: asyncio.Task[None] | None = None

    def load(self) -> list[Endpoint]:
        """Read, parse and reconcile now; raises `StaticDiscoveryError` naming file and line."""
        signature, endpoints = self._read()
        self._signature = signature
        self._target.reconcile(endpoints)
        return endpoints

    def start(self) -> None:
        """Start watching the file (on the running loop); call `load()` first."""
        if self._task is not None:
            raise RuntimeError("StaticDiscovery already started")
        self._task = asyncio.create_task(self._watch(), name=f"epp-static-discovery:{self.path}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _read(self) -> tuple[tuple[int, int, int], list[Endpoint]]:
        try:
            signature = _signature(self.path)
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise StaticDiscoveryError(f"{self.path}: cannot read endpoints file: {exc}") from exc
        return signature, parse_endpoints_file(text, self.path)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval_s)
            await self.poll()

    async def poll(self) -> None:
        """Reload if the file changed since last seen; never raises for a bad or missing file."""
        try:
            signature: tuple[int, int, int] | None = await asyncio.to_thread(_signature, self.path)
        except OSError as exc:
            if self._signature is not None:  # log once, until the file is back
                _log.error("epp.static_discovery.unreadable", path=str(self.path), error=str(exc))
            self._signature = None
            return
        if signature == self._signature:
            return
        self._signature = signature  # a broken version is reported once, not every poll
        try:
            self._signature, endpoints = await asyncio.to_thread(self._read)
        except StaticDiscoveryError as exc:
            _log.error("epp.static_discovery.invalid", path=str(self.path), error=str(exc))
            return
        self._target.reconcile(endpoints)
        _log.info("epp.static_discovery.reloaded", path=str(self.path), endpoints=len(endpoints))


def _signature(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size, stat.st_ino
