"""Plugin kinds as typed values: which kinds a class implements, and narrowing to a kind.

A kind is a `Kind[P]`, where `P` is its `Protocol`: `FILTER: Kind[Filter]`. A class is of a kind
when it defines the kind's method (`filter`, `score`, `parse` ...), or, for a kind without a
method (none built in today), when it lists the kind's name in `declared_kinds`. A class may be
of several kinds (`utilization-detector` is a filter and a saturation detector), as upstream's Go
interfaces allow. `kind.accepts(plugin)` narrows a plugin to `P`, so `[p for p in plugins if
FILTER.accepts(p)]` is a `list[Filter]` without a cast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeGuard, TypeVar

from igw.epp.framework.datalayer import DataExtractor, DataSource
from igw.epp.framework.flowcontrol import FairnessPolicy, OrderingPolicy, UsageLimitPolicy
from igw.epp.framework.parsing import Parser
from igw.epp.framework.requestcontrol import (
    Admitter,
    DataProducer,
    PreRequest,
    ResponseBodyProcessor,
    ResponseComplete,
    ResponseHeaderProcessor,
    SaturationDetector,
)
from igw.epp.framework.scheduling import Filter, Picker, ProfileHandler, Scorer

__all__ = [
    "ADMITTER",
    "ALL_KINDS",
    "DATA_EXTRACTOR",
    "DATA_PRODUCER",
    "DATA_SOURCE",
    "FAIRNESS_POLICY",
    "FILTER",
    "ORDERING_POLICY",
    "PARSER",
    "PICKER",
    "PRE_REQUEST",
    "PROFILE_HANDLER",
    "RESPONSE_BODY",
    "RESPONSE_COMPLETE",
    "RESPONSE_HEADER",
    "SATURATION_DETECTOR",
    "SCORER",
    "USAGE_LIMIT_POLICY",
    "Kind",
    "plugin_kinds",
]

P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class Kind(Generic[P]):
    """One plugin kind: its name (as configurations and errors say it) and how it is known."""

    name: str
    method: str | None
    """The method that makes a class this kind; None: the class declares it (`declared_kinds`)."""

    def implemented_by(self, cls: type[Any]) -> bool:
        if self.method is not None:
            return callable(getattr(cls, self.method, None))
        return self.name in getattr(cls, "declared_kinds", ())

    def accepts(self, plugin: object) -> TypeGuard[P]:
        """Whether `plugin` is of this kind; narrows it to the kind's protocol."""
        return self.implemented_by(type(plugin))

    def __str__(self) -> str:
        return self.name


PROFILE_HANDLER: Kind[ProfileHandler] = Kind("profile-handler", "pick_profiles")
FILTER: Kind[Filter] = Kind("filter", "filter")
SCORER: Kind[Scorer] = Kind("scorer", "score")
PICKER: Kind[Picker] = Kind("picker", "pick")
DATA_PRODUCER: Kind[DataProducer] = Kind("data-producer", "prepare_data")
ADMITTER: Kind[Admitter] = Kind("admitter", "admit_request")
PRE_REQUEST: Kind[PreRequest] = Kind("pre-request", "pre_request")
RESPONSE_COMPLETE: Kind[ResponseComplete] = Kind("response-complete", "response_complete")
RESPONSE_HEADER: Kind[ResponseHeaderProcessor] = Kind("response-header", "response_header")
RESPONSE_BODY: Kind[ResponseBodyProcessor] = Kind("response-body", "response_body")
SATURATION_DETECTOR: Kind[SaturationDetector] = Kind("saturation-detector", "saturation")
PARSER: Kind[Parser] = Kind("parser", "parse")
DATA_SOURCE: Kind[DataSource] = Kind("data-source", "client_for")
DATA_EXTRACTOR: Kind[DataExtractor] = Kind("data-extractor", "reader_for")
FAIRNESS_POLICY: Kind[FairnessPolicy] = Kind("fairness-policy", "pick_flow")
ORDERING_POLICY: Kind[OrderingPolicy] = Kind("ordering-policy", "sort_key")
USAGE_LIMIT_POLICY: Kind[UsageLimitPolicy] = Kind("usage-limit-policy", "compute_limit")

ALL_KINDS: tuple[Kind[Any], ...] = (
    PROFILE_HANDLER, FILTER, SCORER, PICKER, DATA_PRODUCER, ADMITTER, PRE_REQUEST,
    RESPONSE_COMPLETE, RESPONSE_HEADER, RESPONSE_BODY, SATURATION_DETECTOR, PARSER, DATA_SOURCE,
    DATA_EXTRACTOR, FAIRNESS_POLICY, ORDERING_POLICY, USAGE_LIMIT_POLICY,
)  # fmt: skip


def plugin_kinds(cls: type[Any]) -> frozenset[str]:
    """The names of every kind `cls` implements."""
    return frozenset(kind.name for kind in ALL_KINDS if kind.implemented_by(cls))
