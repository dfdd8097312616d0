"""The plugin registry: explicit, duplicates raise, passed in."""

import pytest

from igw.epp.config import builtin_registry
from igw.epp.flowcontrol import GlobalStrictFairnessPolicy
from igw.epp.framework import PluginRegistry, kinds, plugin_kinds
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
    assert plugin_kinds(UtilizationDetector) == {"filter", "saturation-detector"}
    assert registry.of_kind(kinds.FILTER) == ["utilization-detector"]
    assert registry.implements("utilization-detector", kinds.SATURATION_DETECTOR)
    assert not registry.implements("utilization-detector", kinds.SCORER)


def test_flow_control_policies_are_known_by_their_methods() -> None:
    assert plugin_kinds(GlobalStrictFairnessPolicy) == {"fairness-policy"}
    assert kinds.FAIRNESS_POLICY.accepts(GlobalStrictFairnessPolicy())
    assert not kinds.ORDERING_POLICY.accepts(GlobalStrictFairnessPolicy())


def test_a_class_of_no_kind_is_refused() -> None:
    kindless = type("Nothing", (), {"type_name": "nothing-scorer"})
    with pytest.raises(ValueError, match="implements no plugin kind"):
        PluginRegistry([kindless])


def test_every_plugin_kind_is_registered_once_in_the_one_table() -> None:
    """Parsers, the data layer and the flow-control policies are in the same table as the
    scheduling plugins: one registry, not one per subsystem."""
    registry = builtin_registry(entry_points=False)
    assert registry.of_kind(kinds.PARSER) == ["openai-parser", "passthrough-parser"]
    assert registry.of_kind(kinds.DATA_SOURCE) == ["metrics-data-source"]
    assert registry.of_kind(kinds.DATA_EXTRACTOR) == ["core-metrics-extractor"]
    assert "static-usage-limit-policy" in registry.of_kind(kinds.USAGE_LIMIT_POLICY)


def test_builtin_registries_are_independent() -> None:
    first = builtin_registry(entry_points=False)
    second = builtin_registry(entry_points=False)
    first.register(type("X", (QueueScorer,), {"type_name": "x-scorer"}))
    assert "x-scorer" in first
    assert "x-scorer" not in second
