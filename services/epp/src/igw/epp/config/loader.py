"""Loading an EndpointPickerConfig (§3.3): strict decoding, then upstream's phases.

    decode        YAML -> document; unknown fields, wrong types -> ConfigError with the path
    gates         featureGates checked against the known set
    instantiate   plugins: name defaults to type; duplicates, unknown or refused types -> error
    profiles      profiles, pickers and the profile handler, with the system defaults
    sections      saturationDetector, parser, dataLayer, flowControl, with their defaults
    producers     missing producers auto-created for consumers; dependency order (no cycles)
    assemble      Scheduler, RequestControl and the validated pieces for other subsystems

No configuration at all means `DEFAULT_CONFIG`, upstream's built-in default.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from igw.epp.config import _profiles, _sections
from igw.epp.config._build import Build
from igw.epp.config._decode import decode
from igw.epp.config._producers import order_producers
from igw.epp.config.builtin import builtin_registry
from igw.epp.config.data_layer import DataLayerConfig
from igw.epp.config.errors import ConfigError
from igw.epp.config.flow_control import FlowControlConfig
from igw.epp.config.parsers import ParserSpec
from igw.epp.scheduling.contracts import (
    Admitter,
    Plugin,
    PreRequest,
    ResponseBodyProcessor,
    ResponseComplete,
    ResponseHeaderProcessor,
    SaturationDetector,
)
from igw.epp.scheduling.handle import PluginHandle
from igw.epp.scheduling.registry import PluginRegistry
from igw.epp.scheduling.request_control import RequestControl
from igw.epp.scheduling.scheduler import Scheduler

__all__ = ["DEFAULT_CONFIG", "EppConfig", "load_config", "load_config_file"]

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
    parser: ParserSpec
    data_layer: DataLayerConfig
    flow_control: FlowControlConfig
    feature_gates: frozenset[str]
    plugins: Mapping[str, Plugin]
    """Every instance by name, configured and auto-created, in creation order."""


def load_config(
    text: str | None = None,
    *,
    handle: PluginHandle | None = None,
    registry: PluginRegistry | None = None,
    parsers: Iterable[str] | None = None,
) -> EppConfig:
    """Loads `text` (YAML), or the built-in default when it is None; raises `ConfigError`.

    `registry` defaults to `builtin_registry(parsers=...)`; `handle` to a fresh one.
    """
    if registry is None:
        registry = builtin_registry(parsers=parsers) if parsers is not None else builtin_registry()
    doc = decode(DEFAULT_CONFIG if text is None else text)
    gates = _sections.check_gates(doc.featureGates)
    build = Build(registry, handle if handle is not None else PluginHandle())
    build.add_documented(doc.plugins)
    scheduler = _profiles.build_scheduler(build, doc.schedulingProfiles)
    detector = _sections.saturation_detector(build, doc.saturationDetector)
    parser = _sections.parser(build, doc.parser)
    data_layer = _sections.data_layer(build, doc.dataLayer)
    flow_control = _sections.flow_control(build, doc.flowControl, "flowControl" in gates)
    producers = order_producers(build)
    control = RequestControl(
        build.handle.metrics,
        producers=producers,
        admitters=cast("list[Admitter]", build.of_kind("admitter")),
        pre_request=cast("list[PreRequest]", build.of_kind("pre-request")),
        response_complete=cast("list[ResponseComplete]", build.of_kind("response-complete")),
        response_header=cast("list[ResponseHeaderProcessor]", build.of_kind("response-header")),
        response_body=cast("list[ResponseBodyProcessor]", build.of_kind("response-body")),
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
    parsers: Iterable[str] | None = None,
) -> EppConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError("", f"cannot read config file {path}: {e.strerror}") from None
    return load_config(text, handle=handle, registry=registry, parsers=parsers)
