"""The request's control headers (§1.3) and the header changes sent back to Envoy (§1.4, §1.8).

Control headers steer the EPP and must not reach the model server. Upstream only leaves them out
of the headers it re-sends and never removes them, so Envoy forwards them anyway (quirk #1); igw
removes them with `remove_headers`, together with any `x-gateway-destination-endpoint*` header a
client sent (the destination itself is overwritten with the EPP's pick). Unlike upstream, igw
does not echo every other header back: Envoy keeps headers nobody changes, so only the changes
are sent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from igw.common.envoy import HeaderChanges

__all__ = [
    "DESTINATION",
    "DESTINATION_SERVED",
    "DESTINATION_SUBSET",
    "FAIRNESS_ID",
    "LB_NAMESPACE",
    "MODEL_REWRITE",
    "OBJECTIVE",
    "REQUEST_ID",
    "SUBSET_NAMESPACE",
    "ControlHeaders",
    "destination_metadata",
    "read_control_headers",
    "request_changes",
]

REQUEST_ID: Final = "x-request-id"
OBJECTIVE: Final = "x-gateway-inference-objective"
FAIRNESS_ID: Final = "x-gateway-inference-fairness-id"
MODEL_REWRITE: Final = "x-gateway-model-name-rewrite"
DESTINATION: Final = "x-gateway-destination-endpoint"
DESTINATION_SERVED: Final = "x-gateway-destination-endpoint-served"
DESTINATION_SUBSET: Final = "x-gateway-destination-endpoint-subset"
LB_NAMESPACE: Final = "envoy.lb"
SUBSET_NAMESPACE: Final = "envoy.lb.subset_hint"
DEFAULT_FAIRNESS_ID: Final = "default-flow"

_CONTROL: Final = frozenset({OBJECTIVE, FAIRNESS_ID, MODEL_REWRITE})


@dataclass(frozen=True, slots=True)
class ControlHeaders:
    request_id: str
    request_id_generated: bool
    objective: str | None
    fairness_id: str
    model_rewrite: str | None
    remove: tuple[str, ...]
    """Headers present on the request that must not go upstream."""


def new_request_id() -> str:
    """A random (version 4) UUID in its canonical text form, as upstream generates.

    Four times cheaper than `str(uuid.uuid4())`, which builds a UUID object first; this runs
    for every request that arrives without an `x-request-id`.
    """
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def read_control_headers(headers: Mapping[str, str]) -> ControlHeaders:
    """The control values of a request; header names are lower-case as Envoy sends them."""
    request_id = headers.get(REQUEST_ID, "")
    generated = not request_id
    if generated:
        request_id = new_request_id()
    remove = tuple(name for name in headers if name in _CONTROL or name.startswith(DESTINATION))
    return ControlHeaders(
        request_id=request_id,
        request_id_generated=generated,
        objective=headers.get(OBJECTIVE) or None,
        fairness_id=headers.get(FAIRNESS_ID) or DEFAULT_FAIRNESS_ID,
        model_rewrite=headers.get(MODEL_REWRITE) or None,
        remove=remove,
    )


def request_changes(
    control: ControlHeaders, destination: str, extra: Sequence[tuple[str, str]] = ()
) -> HeaderChanges:
    """Destination set, request id added if generated, control headers removed."""
    changes: list[tuple[str, str]] = [(DESTINATION, destination)]
    if control.request_id_generated:
        changes.append((REQUEST_ID, control.request_id))
    changes.extend(extra)
    # The destination header is set (overwriting a client's), so it is not also removed.
    remove = tuple(name for name in control.remove if name != DESTINATION)
    return HeaderChanges(set=tuple(changes), remove=remove)


def destination_metadata(destination: str) -> dict[str, dict[str, str]]:
    """The `envoy.lb` dynamic metadata carrying the same value as the destination header."""
    return {LB_NAMESPACE: {DESTINATION: destination}}
