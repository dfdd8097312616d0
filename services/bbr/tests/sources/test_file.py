"""The local adapter file: its format, startup loading, reloads, and broken files."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog

from igw.bbr.adapters import AdapterIndex, AdapterSet
from igw.bbr.sources import file as file_source
from igw.bbr.sources.file import AdapterFileError, AdapterFileSource, parse_adapter_file

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
QWEN = "Qwen/Qwen3-0.6B"

NATIVE = f"""\
baseModels:
  - name: llama
    baseModel: {LLAMA}
    adapters: [sql-lora, chat-lora]
  - baseModel: {QWEN}
"""

CONFIGMAPS = f"""\
apiVersion: v1
kind: ConfigMap
metadata:
  name: llama-adapters
  labels:
    inference.networking.k8s.io/bbr-managed: "true"
data:
  baseModel: {LLAMA}
  adapters: |
    - sql-lora
    - chat-lora
---
apiVersion: v1
kind: Service
metadata: {{name: vllm}}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: not-for-bbr
data:
  baseModel: other
"""


def wait_for(get: Callable[[], object], expected: object, timeout_s: float = 15.0) -> None:
    """Poll until `get()` returns `expected`; on timeout the assertion shows the last value."""
    deadline = time.monotonic() + timeout_s
    while (value := get()) != expected and time.monotonic() < deadline:
        time.sleep(0.01)
    assert value == expected


def replace_text(path: Path, text: str) -> None:
    """Change the file in one step, as a ConfigMap volume's symlink swap does. `write_text`
    truncates first, and a poll between the truncation and the write would see an empty file."""
    staged = path.with_name(path.name + ".new")
    staged.write_text(text)
    staged.replace(path)


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[MutableMapping[str, Any]]]:
    # A fresh logger: one cached by an earlier structlog configuration would bypass the capture.
    with structlog.testing.capture_logs() as captured:
        monkeypatch.setattr(file_source, "_log", structlog.get_logger(file_source.__name__))
        yield captured


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "adapters.yaml"
    path.write_text(NATIVE)
    return path


@pytest.fixture
def index() -> AdapterIndex:
    return AdapterIndex()


@pytest.fixture
def source(index: AdapterIndex, path: Path) -> Iterator[AdapterFileSource]:
    source = AdapterFileSource(index, path, poll_interval_s=0.02)
    yield source
    source.stop()
    assert source._thread is None or not source._thread.is_alive()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            NATIVE,
            [AdapterSet(LLAMA, frozenset({"sql-lora", "chat-lora"})), AdapterSet(QWEN)],
            id="native",
        ),
        pytest.param(
            CONFIGMAPS,
            [AdapterSet(LLAMA, frozenset({"sql-lora", "chat-lora"}))],
            id="configmap-manifests",  # the Service and the unlabelled ConfigMap are skipped
        ),
        pytest.param(
            f"{NATIVE}---\n{CONFIGMAPS}",
            [
                AdapterSet(LLAMA, frozenset({"sql-lora", "chat-lora"})),
                AdapterSet(QWEN),
                AdapterSet(
                    LLAMA, frozenset({"sql-lora", "chat-lora"})
                ),  # same mapping: no conflict
            ],
            id="mixed-documents",
        ),
        pytest.param("", [], id="empty-file"),
        pytest.param("baseModels: []\n", [], id="empty-list"),
        pytest.param(
            f"baseModels:\n  - baseModel: {QWEN}\n    adapters:\n",
            [AdapterSet(QWEN)],
            id="null-adapters",
        ),
    ],
)
def test_parse(text: str, expected: list[AdapterSet]) -> None:
    assert parse_adapter_file(text, Path("a.yaml")) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("baseModels: [\n", "a.yaml:2:1: invalid YAML", id="broken-yaml"),
        pytest.param(
            f"- baseModel: {LLAMA}\n", "a.yaml:1: expected a mapping", id="top-level-list"
        ),
        pytest.param(
            "baseModels: []\nextra: 1\n", "a.yaml:1: expected a mapping with only", id="extra-key"
        ),
        pytest.param(
            "baseModels: {a: b}\n", "a.yaml:1: baseModels must be a list", id="not-a-list"
        ),
        pytest.param(
            "baseModels:\n  - adapters: [x]\n",
            "a.yaml:2: entry 0: baseModel is missing",
            id="no-base",
        ),
        pytest.param(
            f"baseModels:\n  - baseModel: {QWEN}\n\n  - baseModel: {LLAMA}\n    adapter: [x]\n",
            "a.yaml:4: entry 1: unknown field(s) ['adapter']",
            id="typo-names-the-line",
        ),
        pytest.param(
            f"baseModels:\n  - baseModel: {QWEN}\n    adapters: x\n",
            "a.yaml:2: entry 0: adapters must be a list of names",
            id="adapters-not-a-list",
        ),
        pytest.param(
            f"baseModels:\n  - baseModel: {QWEN}\n    adapters: [1]\n",
            "adapters must be a list of names",
            id="adapter-not-a-string",
        ),
        pytest.param(
            CONFIGMAPS.replace("    - sql-lora\n    - chat-lora", "    sql: lora"),
            "a.yaml:1: ConfigMap /llama-adapters: data.adapters must be a YAML list",
            id="configmap-bad-adapters",
        ),
        pytest.param(
            f"baseModels:\n  - baseModel: {LLAMA}\n    adapters: [x]\n"
            f"  - baseModel: {QWEN}\n    adapters: [x]\n",
            "a.yaml:4: entry 1: adapter 'x' is mapped to 'Qwen/Qwen3-0.6B' here "
            "and to 'meta-llama/Llama-3.1-8B-Instruct' at a.yaml:2: entry 0",
            id="conflict-in-file",
        ),
    ],
)
def test_parse_errors_name_the_file_and_line(text: str, message: str) -> None:
    with pytest.raises(AdapterFileError, match=re.escape(message)):
        parse_adapter_file(text, Path("a.yaml"))


def test_load_once_fills_the_index_under_per_entry_keys(
    source: AdapterFileSource, index: AdapterIndex, path: Path
) -> None:
    source.load_once()

    assert source.synced
    assert index.base_model_of("chat-lora") == LLAMA
    assert index.base_model_of(QWEN) == QWEN
    assert set(index.snapshot().entries) == {f"file:{path}#0", f"file:{path}#1"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            "baseModels:\n  - adapters: [x]\n", ":2: entry 0: baseModel is missing", id="invalid"
        ),
        pytest.param(None, ": cannot read adapter file", id="missing"),
    ],
)
def test_load_once_raises_a_clear_value_error(
    source: AdapterFileSource, index: AdapterIndex, path: Path, content: str | None, message: str
) -> None:
    if content is None:
        path.unlink()
    else:
        path.write_text(content)

    with pytest.raises(ValueError, match=re.escape(f"{path}{message}")):
        source.load_once()
    assert not source.synced
    assert index.snapshot().entries == {}


def test_a_changed_file_is_reloaded(
    source: AdapterFileSource, index: AdapterIndex, path: Path
) -> None:
    source.load_once()
    source.start()

    replace_text(path, f"baseModels:\n  - baseModel: {QWEN}\n    adapters: [qwen-lora]\n")

    wait_for(lambda: index.base_model_of("qwen-lora"), QWEN)
    assert index.base_model_of("sql-lora") is None  # the entry that vanished left the index
    assert set(index.snapshot().entries) == {f"file:{path}#0"}


def test_start_without_load_once_loads_on_the_first_poll(
    source: AdapterFileSource, index: AdapterIndex
) -> None:
    source.start()

    wait_for(lambda: index.base_model_of("sql-lora"), LLAMA)


def test_a_broken_file_keeps_the_previous_mapping(
    source: AdapterFileSource,
    index: AdapterIndex,
    path: Path,
    logs: list[MutableMapping[str, Any]],
) -> None:
    source.load_once()
    source.start()
    before = index.snapshot()

    replace_text(path, "baseModels:\n  - baseModel: [unclosed\n")
    wait_for(
        lambda: [e["event"] for e in logs if e["log_level"] == "error"],
        ["bbr.adapter_file.invalid"],
    )

    assert index.snapshot() is before
    assert f"{path}:3:1: invalid YAML" in logs[-1]["error"]
    time.sleep(0.1)  # several more polls of the same broken file...
    assert len([e for e in logs if e["log_level"] == "error"]) == 1  # ...are not logged again

    replace_text(path, f"baseModels:\n  - baseModel: {QWEN}\n")  # fixed: reloaded
    wait_for(lambda: index.base_model_of("sql-lora"), None)
    assert index.base_model_of(QWEN) == QWEN


def test_a_deleted_file_keeps_the_previous_mapping(
    source: AdapterFileSource,
    index: AdapterIndex,
    path: Path,
    logs: list[MutableMapping[str, Any]],
) -> None:
    source.load_once()
    source.start()
    before = index.snapshot()

    path.unlink()

    wait_for(
        lambda: [e["event"] for e in logs if e["log_level"] == "error"],
        ["bbr.adapter_file.unreadable"],
    )
    assert index.snapshot() is before


def test_stop_returns_promptly(source: AdapterFileSource) -> None:
    slow = AdapterFileSource(AdapterIndex(), source._path, poll_interval_s=60.0)
    slow.start()

    started = time.monotonic()
    slow.stop()

    assert time.monotonic() - started < 1.0
    assert slow._thread is not None
    assert not slow._thread.is_alive()
