"""The adapter index: lookups, ref-counted base models, invalid data, conflicts, idempotence."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import pytest
import structlog

from igw.bbr import adapters
from igw.bbr.adapters import AdapterDataError, AdapterIndex, AdapterSet, parse_configmap_data

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
QWEN = "Qwen/Qwen3-0.6B"


def config_map(base: str, *names: str) -> dict[str, str]:
    """ConfigMap data as the API serves it: `adapters` is a YAML list inside a string."""
    return {"baseModel": base, "adapters": "".join(f"- {name}\n" for name in names)}


def index_of(world: Mapping[str, Mapping[str, str]]) -> AdapterIndex:
    index = AdapterIndex()
    for key, data in world.items():
        index.reconcile(key, data)
    return index


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[MutableMapping[str, Any]]]:
    # A fresh logger: one cached by an earlier structlog configuration would bypass the capture.
    with structlog.testing.capture_logs() as captured:
        monkeypatch.setattr(adapters, "_log", structlog.get_logger(adapters.__name__))
        yield captured


@pytest.mark.parametrize(
    ("world", "name", "expected"),
    [
        pytest.param({"ns/a": config_map(LLAMA, "sql-lora")}, "sql-lora", LLAMA, id="adapter"),
        pytest.param({"ns/a": config_map(LLAMA, "sql-lora")}, LLAMA, LLAMA, id="base-is-itself"),
        pytest.param({"ns/a": config_map(LLAMA, "sql-lora")}, "other", None, id="unknown"),
        pytest.param({}, LLAMA, None, id="empty-index"),
        pytest.param({"ns/a": {"baseModel": QWEN}}, QWEN, QWEN, id="base-without-adapters"),
        pytest.param(
            {"ns/a": config_map(LLAMA, "x"), "ns/b": config_map(QWEN, "y")},
            "y",
            QWEN,
            id="second-configmap",
        ),
        pytest.param(
            {"ns/a": config_map(LLAMA, "m"), "ns/b": {"baseModel": "m"}},
            "m",
            LLAMA,
            id="adapter-wins-over-base-of-same-name",
        ),
        pytest.param(
            {"ns/b": config_map(QWEN, "shared"), "ns/a": config_map(LLAMA, "shared")},
            "shared",
            LLAMA,
            id="conflict-smallest-key-wins",  # regardless of arrival order
        ),
        pytest.param(
            {"ns/a": {"baseModel": f"  {LLAMA}\n", "adapters": "[' spaced ']"}},
            "spaced",
            LLAMA,
            id="names-are-trimmed",
        ),
    ],
)
def test_base_model_of(world: dict[str, dict[str, str]], name: str, expected: str | None) -> None:
    assert index_of(world).base_model_of(name) == expected


def test_deleting_one_of_two_configmaps_sharing_a_base_keeps_the_base() -> None:
    index = index_of({"ns/a": config_map(LLAMA, "x"), "ns/b": config_map(LLAMA, "y")})

    index.reconcile("ns/a", None)

    assert index.base_model_of(LLAMA) == LLAMA
    assert index.base_model_of("x") is None  # a's adapters left with it
    assert index.base_model_of("y") == LLAMA
    assert index.snapshot().base_models == {LLAMA: 1}

    index.reconcile("ns/b", None)

    assert index.base_model_of(LLAMA) is None
    assert index.snapshot().base_models == {}


def test_an_update_replaces_the_previous_entry_of_its_key() -> None:
    index = index_of({"ns/a": config_map(LLAMA, "x")})

    index.reconcile("ns/a", config_map(QWEN, "y"))

    assert index.base_model_of("x") is None
    assert index.base_model_of(LLAMA) is None
    assert index.base_model_of("y") == QWEN


def test_deleting_an_unknown_key_changes_nothing() -> None:
    index = index_of({"ns/a": config_map(LLAMA, "x")})
    before = index.snapshot()

    index.reconcile("ns/never-seen", None)

    assert index.snapshot() is before


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param({"adapters": "- x"}, "baseModel is missing", id="no-base-model"),
        pytest.param(
            {"baseModel": " ", "adapters": "- x"}, "baseModel is missing", id="blank-base"
        ),
        pytest.param(
            {"baseModel": LLAMA, "adapters": "- x\n- [y"},
            "not valid YAML: expected ',' or ']'",
            id="broken-yaml",
        ),
        pytest.param({"baseModel": LLAMA, "adapters": "x: y"}, "got dict", id="mapping"),
        pytest.param({"baseModel": LLAMA, "adapters": "just-a-name"}, "got str", id="scalar"),
        pytest.param({"baseModel": LLAMA, "adapters": "- 42\n- x"}, "not names", id="number"),
        pytest.param({"baseModel": LLAMA, "adapters": "- ''"}, "not names", id="empty-name"),
        pytest.param({"baseModel": 7}, "baseModel is missing", id="non-string-base"),
    ],
)
def test_invalid_data_contributes_nothing_and_warns(
    logs: list[MutableMapping[str, Any]], data: dict[str, Any], reason: str
) -> None:
    index = index_of({"ns/bad": config_map(QWEN, "was-valid")})

    index.reconcile("ns/bad", data)

    assert index.base_model_of("was-valid") is None
    assert index.base_model_of(QWEN) is None
    assert reason in index.snapshot().invalid["ns/bad"]
    warning = logs[-1]
    assert warning["log_level"] == "warning"
    assert warning["key"] == "ns/bad"
    assert reason in warning["reason"]


def test_fixing_invalid_data_clears_the_invalid_mark() -> None:
    index = index_of({"ns/a": {"adapters": "- x"}})

    index.reconcile("ns/a", config_map(LLAMA, "x"))

    assert index.snapshot().invalid == {}
    assert index.base_model_of("x") == LLAMA


@pytest.mark.parametrize(
    "events",
    [
        pytest.param([("ns/a", config_map(LLAMA, "x"))], id="same-object"),
        pytest.param([("ns/a", None)], id="same-deletion"),
        pytest.param([("ns/a", {"adapters": "- x"})], id="same-invalid-object"),
        pytest.param(
            [("ns/a", config_map(LLAMA, "x")), ("ns/b", config_map(QWEN, "x"))],
            id="same-conflict",
        ),
    ],
)
def test_replays_are_idempotent(
    logs: list[MutableMapping[str, Any]], events: list[tuple[str, dict[str, str] | None]]
) -> None:
    index = AdapterIndex()
    for key, data in events:
        index.reconcile(key, data)
    snapshot, logged = index.snapshot(), len(logs)

    for key, data in events:  # a relist or a watch resume replays the same world
        index.reconcile(key, data)

    assert index.snapshot() is snapshot
    assert len(logs) == logged  # a replay is not a change: nothing is logged again


def test_a_conflict_warns_once_naming_both_configmaps(logs: list[MutableMapping[str, Any]]) -> None:
    index = index_of({"ns/a": config_map(LLAMA, "shared"), "ns/b": config_map(QWEN, "shared")})
    index.reconcile("ns/c", config_map(QWEN, "unrelated"))

    conflicts = [entry for entry in logs if entry["event"] == "bbr.adapters.conflict"]
    assert conflicts == [
        {
            "event": "bbr.adapters.conflict",
            "log_level": "warning",
            "adapter": "shared",
            "chosen_key": "ns/a",
            "chosen_base_model": LLAMA,
            "ignored_key": "ns/b",
            "ignored_base_model": QWEN,
        }
    ]


def test_each_change_is_logged(logs: list[MutableMapping[str, Any]]) -> None:
    index = AdapterIndex()
    index.reconcile("ns/a", config_map(LLAMA, "y", "x"))
    index.reconcile("ns/a", None)

    assert logs == [
        {
            "event": "bbr.adapters.updated",
            "log_level": "info",
            "key": "ns/a",
            "base_model": LLAMA,
            "adapters": ["x", "y"],
        },
        {"event": "bbr.adapters.removed", "log_level": "info", "key": "ns/a"},
    ]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            config_map(LLAMA, "a", "b"), AdapterSet(LLAMA, frozenset({"a", "b"})), id="list"
        ),
        pytest.param(
            {"baseModel": LLAMA, "adapters": "[a, a]"},
            AdapterSet(LLAMA, frozenset({"a"})),
            id="flow-dup",
        ),
        pytest.param({"baseModel": LLAMA, "adapters": ""}, AdapterSet(LLAMA), id="empty-string"),
        pytest.param({"baseModel": LLAMA}, AdapterSet(LLAMA), id="no-adapters-key"),
        pytest.param({}, AdapterDataError("data.baseModel is missing or empty"), id="empty-data"),
    ],
)
def test_parse_configmap_data(
    data: dict[str, str], expected: AdapterSet | AdapterDataError
) -> None:
    assert parse_configmap_data(data) == expected


def test_readers_see_whole_snapshots_while_a_thread_writes() -> None:
    # One ConfigMap flips between two states; a reader must never see a mix of them.
    states = [config_map(LLAMA, "x", "y"), config_map(QWEN, "x", "y")]
    index = index_of({"ns/a": states[0]})
    done = threading.Event()

    def writer() -> None:
        for i in range(2000):
            index.reconcile("ns/a", states[i % 2])
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    seen: set[tuple[str | None, ...]] = set()
    while not done.is_set():
        snapshot = index.snapshot()
        seen.add(tuple(snapshot.base_model_of(name) for name in ("x", "y", LLAMA, QWEN)))
    thread.join()

    assert seen <= {(LLAMA, LLAMA, LLAMA, None), (QWEN, QWEN, None, QWEN)}


def test_learned_is_when_a_name_first_appeared() -> None:
    now = [1000.0]
    index = AdapterIndex(clock=lambda: now[0])
    index.reconcile("default/llama", config_map(LLAMA, "sql-lora"))
    now[0] = 2000.0
    # The same key again with one more adapter: only the new name is new.
    index.reconcile("default/llama", config_map(LLAMA, "sql-lora", "food-lora"))
    index.reconcile("default/qwen", config_map(QWEN))
    assert dict(index.snapshot().learned) == {
        LLAMA: 1000,
        "sql-lora": 1000,
        "food-lora": 2000,
        QWEN: 2000,
    }
    now[0] = 3000.0
    # A name that goes and comes back is learned anew; names that stayed keep their time.
    index.reconcile("default/llama", config_map(LLAMA, "food-lora"))
    index.reconcile("default/llama", config_map(LLAMA, "sql-lora", "food-lora"))
    assert dict(index.snapshot().learned) == {
        LLAMA: 1000,
        "sql-lora": 3000,
        "food-lora": 2000,
        QWEN: 2000,
    }
