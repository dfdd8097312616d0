"""The latency SLO headers a client may send (upstream's names), read the way upstream reads them:
a non-negative integer of milliseconds; anything else means no SLO."""

from __future__ import annotations

from igw.epp.endpoints import InferenceRequest

__all__ = ["SLO_TPOT_HEADER", "SLO_TTFT_HEADER", "slo_seconds"]

SLO_TTFT_HEADER = "x-slo-ttft-ms"
SLO_TPOT_HEADER = "x-slo-tpot-ms"


def slo_seconds(request: InferenceRequest, header: str = SLO_TTFT_HEADER) -> float | None:
    value = request.headers.get(header)
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.lstrip("+").isdigit():
        return None
    return int(text) / 1000.0
