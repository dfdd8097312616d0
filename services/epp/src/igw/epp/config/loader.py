"""Loading an EndpointPickerConfig (§3.3): strict decoding, then upstream's phases.

    decode        YAML -> document; unknown fields, wrong types -> ConfigError with the path
    gates         featureGates checked against the known set
    instantiate   plugins: name defaults to type; duplicates, unknown or refused types -> error
    profiles      profiles, pickers and the profile handler, with the system defaults
    sections      saturationDetector, parser, dataLayer, flowControl, with their defaults
    producers     missing producers auto-created for consumers; dependency order (no cycles)
    assemble      Scheduler, RequestControl (with the legacy admission over the saturation
                  detector) and the validated pieces for other subsystems

No configuration at all means `DEFAULT_CONFIG`, upstream's built-in default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from igw.epp.config import _profiles, _sections
from igw.epp.config._build import Build
from igw.epp.config._decode import decode
from igw.epp.config._producers import order_producers
from igw.epp.config.builtin import builtin_registry
from igw.epp.config.errors import ConfigError
from igw.epp.datalayer import DataLayerConfig
from igw.epp.flowcontrol import FlowControlConfig
from igw.epp.framework import Kind, Plugin, PluginHandle, PluginRegistry, kinds
from igw.epp.framework.parsing import Parser
from igw.epp.framework.requestcontrol import SaturationDetector
from igw.epp.requestcontrol import LegacyAdmission, RequestControl
from igw.epp.scheduling import Scheduler

__all__ = ["DEFAULT_CONFIG", "EppConfig", "load_config", "load_config_file"]

P = TypeVar("P")

DEFAULT_CONFIG = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- type: metrics-data-source
- type: core-metrics-extractor
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 2}
  - {pluginRef: kv-cache-utilization-scorer, weight: 2}
  - {pluginRef: prefix-cache-scorer, weight: 3}
"""
"""Upstream's `loader/defaults.go`: max-score-picker, single-profile-handler, openai-parser,
utilization-detector and the default data layer come from the system defaults."""


@dataclass(frozen=True, slots=True)
class EppConfig:
    """A loaded configuration: what the EPP runs, and what other subsystems consume."""

    scheduler: Scheduler
    request_control: RequestControl
    saturation_detector: SaturationDetector
    parser: Parser
    data_layer: DataLayerConfig
    flow_control: FlowControlConfig
    feature_gates: frozenset[str]
    plugins: Mapping[str, Plugin]
    """Every instance by name, configured and auto-created, in creation order."""

    def plugins_of(self, kind: Kind[P]) -> list[P]:
        """The instances of one kind, typed as it (`plugins_of(kinds.FILTER)` is a
        `list[Filter]`), in creation order."""
        return [p for p in self.plugins.values() if kind.accepts(p)]


def load_config(
    text: str | None = None,
    *,
    handle: PluginHandle | None = None,
    registry: PluginRegistry | None = None,
) -> EppConfig:
    """Loads `text` (YAML), or the built-in default when it is None; raises `ConfigError`.

    `registry` defaults to `builtin_registry()`; `handle` to a fresh one.
    """
    doc = decode(DEFAULT_CONFIG if text is None else text)
    gates = _sections.check_gates(doc.feature_gates)
    build = Build(registry or builtin_registry(), handle or PluginHandle())
    build.add_documented(doc.plugins)
    scheduler = _profiles.build_scheduler(build, doc.scheduling_profiles)
    detector = _sections.saturation_detector(build, doc.saturation_detector)
    parser = _sections.parser(build, doc.parser)
    data_layer = _sections.data_layer(build, doc.data_layer)
    flow_control = _sections.flow_control(build, doc.flow_control, "flowControl" in gates)
    control = RequestControl(
        build.handle.metrics,
        admission=LegacyAdmission(detector),
        producers=order_producers(build),
        admitters=build.of_kind(kinds.ADMITTER),
        pre_request=build.of_kind(kinds.PRE_REQUEST),
        response_complete=build.of_kind(kinds.RESPONSE_COMPLETE),
        response_header=build.of_kind(kinds.RESPONSE_HEADER),
        response_body=build.of_kind(kinds.RESPONSE_BODY),
    )
    return EppConfig(
        scheduler, control, detector, parser, data_layer, flow_control, gates,
        dict(build.instances),
    )  # fmt: skip


def load_config_file(
    path: str | Path,
    *,
    handle: PluginHandle | None = None,
    registry: PluginRegistry | None = None,
) -> EppConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError("", f"cannot read config file {path}: {e.strerror}") from None
    return load_config(text, handle=handle, registry=registry)
