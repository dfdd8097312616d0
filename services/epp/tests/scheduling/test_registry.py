"""The plugin registry: explicit, duplicates raise, passed in."""

import pytest

from igw.epp.config import builtin_registry
from igw.epp.scheduling import PluginRegistry
from igw.epp.scheduling.plugins import QueueScorer, UtilizationDetector


def test_starts_empty_and_registers_explicitly() -> None:
    registry = PluginRegistry()
    assert registry.types() == []
    registry.register(QueueScorer)
    assert registry.types() == ["queue-scorer"]


def test_duplicate_type_raises() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        PluginRegistry([QueueScorer, QueueScorer])


def test_kinds_come_from_the_methods() -> None:
    registry = PluginRegistry([UtilizationDetector])
    assert registry.kinds("utilization-detector") == {"filter", "saturation-detector"}
    assert registry.types("filter") == ["utilization-detector"]


def test_builtin_registries_are_independent_and_parsers_are_injected() -> None:
    first = builtin_registry(parsers=["openai-parser"], entry_points=False)
    second = builtin_registry(entry_points=False)
    assert first.types("parser") == ["openai-parser"]
    assert second.types("parser") == ["openai-parser", "passthrough-parser"]
    first.register(type("X", (QueueScorer,), {"type_name": "x-scorer"}))
    assert "x-scorer" not in second
