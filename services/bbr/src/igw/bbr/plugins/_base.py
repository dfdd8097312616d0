"""The BBR plugin contract.

A request plugin reads the fields it declared from the request body (already decoded once for
all plugins, as raw JSON) and records header changes on the shared `Mutations`. Plugins run in
the order they were configured; a plugin raising an `InferenceError` fails the request with that
error's status, and no later plugin runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import msgspec

from igw.bbr.metrics import BbrMetrics
from igw.common.errors import BadRequestError

__all__ = ["MAX_HEADER_VALUE", "AdapterLookup", "Mutations", "PluginHandle", "RequestPlugin"]

# Envoy rejects a header mutation carrying control characters (CR and LF would split the
# header), and a value beyond a few KiB is no model name; either would otherwise surface as an
# opaque 500 from the failed mutation instead of a 400 that says what was wrong.
MAX_HEADER_VALUE = 8192
_INVALID_IN_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class AdapterLookup(Protocol):
    """The one method the base-model plugin needs from the adapter index."""

    def base_model_of(self, name: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class PluginHandle:
    """What plugins may use beyond their own parameters; passed in, never global."""

    adapters: AdapterLookup
    metrics: BbrMetrics


@dataclass(slots=True)
class Mutations:
    """Header changes collected from the plugins of one request; later plugins win."""

    set: dict[str, str] = field(default_factory=dict)
    remove: list[str] = field(default_factory=list)

    def set_header(self, name: str, value: str) -> None:
        """Records `name: value`; raises `BadRequestError` if Envoy could not send the value."""
        if len(value) > MAX_HEADER_VALUE:
            raise BadRequestError(
                f"the value for header {name} is {len(value)} characters long; "
                f"at most {MAX_HEADER_VALUE} can be sent"
            )
        if _INVALID_IN_HEADER.search(value):
            raise BadRequestError(
                f"the value for header {name} contains control characters: {value[:80]!r}"
            )
        key = name.lower()
        self.set[key] = value
        if key in self.remove:
            self.remove.remove(key)

    def remove_header(self, name: str) -> None:
        key = name.lower()
        self.set.pop(key, None)
        if key not in self.remove:
            self.remove.append(key)


class RequestPlugin(Protocol):
    """A plugin on the request path.

    `fields` names the top-level body fields the plugin reads; `process_request` gets those that
    are present (JSON `null` counts as absent) and must not block: it runs on the event loop.
    """

    type_name: ClassVar[str]

    @property
    def name(self) -> str:
        """This instance's name from the configuration."""

    @property
    def fields(self) -> tuple[str, ...]:
        """The top-level body fields this plugin reads."""

    def process_request(
        self, fields: Mapping[str, msgspec.Raw], headers: Mapping[str, str], out: Mutations
    ) -> None: ...

    @classmethod
    def from_config(
        cls, name: str, params: Mapping[str, Any], handle: PluginHandle
    ) -> RequestPlugin: ...
