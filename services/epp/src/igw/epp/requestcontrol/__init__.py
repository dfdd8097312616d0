"""Request control (§5-6): what happens around a scheduling cycle and after it.

`RequestControl` runs the request-control plugins of one configuration, each call timed under
upstream's extension point: admission (the legacy shedding rule or, later, flow control), then
PrepareData producers and Admit plugins (`admit`, the one admission step), PreRequest after the
pick, and on the response ResponseReceived, ResponseStreaming and ResponseComplete.
"""

from igw.epp.requestcontrol.admission import (
    SHED_MESSAGE,
    Admission,
    HoldingAdmission,
    LegacyAdmission,
    admit,
)
from igw.epp.requestcontrol.hooks import NO_CANDIDATES, RequestControl

__all__ = [
    "NO_CANDIDATES",
    "SHED_MESSAGE",
    "Admission",
    "HoldingAdmission",
    "LegacyAdmission",
    "RequestControl",
    "admit",
]
