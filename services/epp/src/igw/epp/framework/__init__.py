"""The EPP's plugin framework (GIE's `framework`): what every plugin package builds on.

    plugin.Plugin                  type name, instance name, `from_config(name, params, handle)`
    params                         typed, strict parameter structs (`Params`, `decode_params`)
    kinds.Kind[P]                  the kinds as typed values; a class's kinds from its methods
    scheduling, requestcontrol,    one `Protocol` per kind, with its contract
    parsing, datalayer, flowcontrol
    registry.PluginRegistry        type name -> class (the common registry + kinds)
    handle.PluginHandle            what plugins may use beyond their parameters (metrics, RNG)
    cycle_state, results,          the values kinds exchange: per-request state, scheduling
    response, metrics              results, the response plugins' view, plugin latency metrics

This package imports no other EPP package but `igw.epp.endpoints`; scheduling, request control,
parsers, the data layer and flow control are plugins of it, and `igw.epp.config` builds them
through its registry (DESIGN §3.1).
"""

from igw.epp.framework import kinds
from igw.epp.framework.cycle_state import AttributeKey, CycleState, StateKey
from igw.epp.framework.handle import PluginHandle
from igw.epp.framework.kinds import Kind, plugin_kinds
from igw.epp.framework.metrics import SchedulerMetrics
from igw.epp.framework.params import NoParams, ParameterlessPlugin, Params, decode_params
from igw.epp.framework.plugin import Plugin
from igw.epp.framework.registry import ENTRY_POINT_GROUP, PluginRegistry
from igw.epp.framework.response import Response
from igw.epp.framework.results import (
    FilterStep,
    ProfileExplanation,
    ProfileResult,
    SchedulingError,
    SchedulingResult,
    ScoreColumn,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "AttributeKey",
    "CycleState",
    "FilterStep",
    "Kind",
    "NoParams",
    "ParameterlessPlugin",
    "Params",
    "Plugin",
    "PluginHandle",
    "PluginRegistry",
    "ProfileExplanation",
    "ProfileResult",
    "Response",
    "SchedulerMetrics",
    "SchedulingError",
    "SchedulingResult",
    "ScoreColumn",
    "StateKey",
    "decode_params",
    "kinds",
    "plugin_kinds",
]
