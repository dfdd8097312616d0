"""The local adapter source: a YAML file, for running the BBR without a cluster.

File format: YAML, one or more documents (`---`). Each document is one of:

* an adapter list (the native format)::

      baseModels:
        - name: llama                  # optional, used in messages only
          baseModel: meta-llama/Llama-3.1-8B-Instruct
          adapters: [sql-lora, chat-lora]   # optional; omitted = just declare the base model
        - baseModel: Qwen/Qwen3-0.6B

* a ConfigMap manifest, exactly as `kubectl apply` takes it: `kind: ConfigMap`, the label
  `inference.networking.k8s.io/bbr-managed: "true"` and data keys `baseModel` and `adapters` (a
  YAML list inside a string). ConfigMaps without the label are skipped with a warning, as the
  cluster source would ignore them; manifests of other kinds are skipped silently, so a whole
  manifest bundle can be used.

Entries are numbered across the file in order; entry `i` is reconciled into the index under the
key `file:<path>#<i>`. The file is validated as a whole: an unknown field, a missing `baseModel`,
adapters that are not a list of names, or one adapter mapped to two base models within the file
rejects the file, with `<path>:<line>:` in the message.

Threads and lifecycle: call `load_once()` at startup: it raises `AdapterFileError` (a
`ValueError`), so a broken file fails startup loudly. `start()` then polls the file's
(mtime, size, inode) in a daemon thread every `poll_interval_s` (a thread rather than an asyncio
task: file I/O and YAML parsing stay off the event loop, as for the ConfigMap source). On a change
it reloads; a file that fails to parse, disappears or cannot be read keeps the previous mapping
and logs one error per change. `stop()` sets the event the poll waits on: it returns at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import structlog
import yaml

from igw.bbr.adapters import (
    BBR_MANAGED_LABEL,
    AdapterDataError,
    AdapterIndex,
    AdapterSet,
    parse_configmap_data,
)

__all__ = ["AdapterFileError", "AdapterFileSource", "parse_adapter_file"]

_ENTRY_FIELDS = frozenset({"name", "baseModel", "adapters"})

_log = structlog.get_logger(__name__)


class AdapterFileError(ValueError):
    """The adapter file cannot be read or is invalid; the message names the file and line."""


def parse_adapter_file(text: str, path: Path) -> list[AdapterSet]:
    """All entries of an adapter file, in order; raises `AdapterFileError`."""
    entries: list[tuple[str, AdapterSet]] = []
    for line, data, items in _documents(text, path):
        where = f"{path}:{line}"
        if isinstance(data, dict) and "kind" in data:
            entry = _config_map_entry(data, where)
            if entry is not None:
                entries.append((where, entry))
        elif isinstance(data, dict) and set(data) == {"baseModels"}:
            if not isinstance(data["baseModels"], list):
                raise AdapterFileError(f"{where}: baseModels must be a list of entries")
            for item, item_line in zip(data["baseModels"], items, strict=True):
                item_where = f"{path}:{item_line}: entry {len(entries)}"
                entries.append((item_where, _list_entry(item, item_where)))
        elif data is not None:
            raise AdapterFileError(
                f"{where}: expected a mapping with only a `baseModels:` list, "
                "or a Kubernetes manifest (`kind: ConfigMap`)"
            )
    _check_conflicts(entries)
    return [entry for _, entry in entries]


def _documents(text: str, path: Path) -> Iterator[tuple[int, Any, list[int]]]:
    """(1-based line, data, lines of the `baseModels` items) per YAML document."""
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise AdapterFileError(f"{location}: invalid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise AdapterFileError(f"{path}: invalid YAML: {exc}") from exc
    for node in nodes:
        data = yaml.SafeLoader("").construct_document(node)
        yield node.start_mark.line + 1, data, _item_lines(node)


def _item_lines(node: yaml.Node) -> list[int]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "baseModels" and isinstance(value, yaml.SequenceNode):
                return [item.start_mark.line + 1 for item in value.value]
    return []


def _list_entry(item: object, where: str) -> AdapterSet:
    if not isinstance(item, dict):
        raise AdapterFileError(f"{where}: must be a mapping with baseModel and adapters")
    unknown = sorted(str(key) for key in set(item) - _ENTRY_FIELDS)
    if unknown:
        raise AdapterFileError(
            f"{where}: unknown field(s) {unknown}; allowed: name, baseModel, adapters"
        )
    if "name" in item and not isinstance(item["name"], str):
        raise AdapterFileError(f"{where}: name must be a string")
    base = item.get("baseModel")
    if not isinstance(base, str) or not base.strip():
        raise AdapterFileError(f"{where}: baseModel is missing or empty")
    adapters = item.get("adapters") or []
    if not isinstance(adapters, list) or not all(
        isinstance(adapter, str) and adapter.strip() for adapter in adapters
    ):
        raise AdapterFileError(f"{where}: adapters must be a list of names, got {adapters!r}")
    return AdapterSet(base.strip(), frozenset(adapter.strip() for adapter in adapters))


def _config_map_entry(manifest: Mapping[str, Any], where: str) -> AdapterSet | None:
    if manifest.get("kind") != "ConfigMap":
        return None  # another kind in a manifest bundle
    meta = manifest.get("metadata") or {}
    if not isinstance(meta, dict):
        raise AdapterFileError(f"{where}: ConfigMap metadata must be a mapping")
    name = f"{meta.get('namespace') or ''}/{meta.get('name')}"
    labels = meta.get("labels")
    if not isinstance(labels, dict) or labels.get(BBR_MANAGED_LABEL) != "true":
        _log.warning("bbr.adapter_file.unmanaged_configmap", location=where, configmap=name)
        return None
    data = manifest.get("data") or {}
    if not isinstance(data, dict):
        raise AdapterFileError(f"{where}: ConfigMap {name}: data must be a mapping")
    parsed = parse_configmap_data(data)
    if isinstance(parsed, AdapterDataError):
        raise AdapterFileError(f"{where}: ConfigMap {name}: {parsed.reason}")
    return parsed


def _check_conflicts(entries: list[tuple[str, AdapterSet]]) -> None:
    claimed: dict[str, tuple[str, str]] = {}
    for where, entry in entries:
        for adapter in sorted(entry.adapters):
            base, first = claimed.setdefault(adapter, (entry.base_model, where))
            if base != entry.base_model:
                raise AdapterFileError(
                    f"{where}: adapter {adapter!r} is mapped to {entry.base_model!r} here "
                    f"and to {base!r} at {first}"
                )


class AdapterFileSource:
    """Keeps an `AdapterIndex` in step with a local adapter file."""

    def __init__(self, index: AdapterIndex, path: Path, poll_interval_s: float = 1.0) -> None:
        self._index = index
        self._path = path
        self._poll_interval_s = poll_interval_s
        self._lock = threading.Lock()  # serialises load_once() against the poll thread
        self._keys: set[str] = set()
        self._signature: tuple[int, int, int] | None = None  # last state seen, loaded or not
        self._unreadable = False  # poll thread only
        self._stopping = threading.Event()
        self._synced = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def synced(self) -> bool:
        """True once the file has been applied to the index at least once."""
        return self._synced.is_set()

    def load_once(self) -> None:
        """Load the file now; raises `AdapterFileError` naming the file and the problem."""
        with self._lock:
            try:
                signature = _signature(self._path)
                text = self._path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise AdapterFileError(f"{self._path}: cannot read adapter file: {exc}") from exc
            self._signature = signature
            self._apply(parse_adapter_file(text, self._path))

    def start(self) -> None:
        """Start polling the file for changes; a source starts at most once."""
        if self._thread is not None:
            raise RuntimeError("AdapterFileSource already started")
        self._thread = threading.Thread(target=self._run, name="bbr-adapter-file", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop polling and wait up to `timeout_s` for the thread to end."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            self._poll()
            if self._stopping.wait(self._poll_interval_s):
                return

    def _poll(self) -> None:
        try:
            signature = _signature(self._path)
        except OSError as exc:
            if not self._unreadable:  # log once per outage, not every poll
                self._unreadable = True
                _log.error("bbr.adapter_file.unreadable", path=str(self._path), error=str(exc))
            return
        self._unreadable = False
        if signature == self._signature:
            return
        self._signature = signature  # a broken version is reported once, not every poll
        try:
            self.load_once()
        except AdapterFileError as exc:
            _log.error("bbr.adapter_file.invalid", error=str(exc), kept="previous mapping")

    def _apply(self, entries: list[AdapterSet]) -> None:
        keys = [f"file:{self._path}#{i}" for i in range(len(entries))]
        changes: dict[str, AdapterSet | None] = dict.fromkeys(self._keys - set(keys))
        changes.update(zip(keys, entries, strict=True))
        self._index.set_entries(changes)  # one swap: never half of an old and a new file
        self._keys = set(keys)
        self._synced.set()
        _log.info("bbr.adapter_file.loaded", path=str(self._path), entries=len(entries))


def _signature(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size, stat.st_ino
