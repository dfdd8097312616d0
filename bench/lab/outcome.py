"""What the lab keeps of each request: its place in the plan and its answer as the client saw it.

The answer (`bench._load.Streamed`) holds the status, the pod that served it, when each token
arrived and when the stream ended; `row()` is what `results.json` keeps of a request (the token
gaps only as the rung's inter-token percentiles).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench._load import Streamed

__all__ = ["Outcome"]


@dataclass(frozen=True, slots=True)
class Outcome:
    index: int
    """The request's place in the workload's sequence."""
    rung: int
    group: str
    """What shares a prefix with it (`LabRequest.group`)."""
    sent: float
    """Seconds from the start of the router's run to the request's release."""
    answer: Streamed

    def row(self) -> dict[str, Any]:
        """What results.json keeps of the request."""
        answer = self.answer
        return {
            "i": self.index,
            "group": self.group,
            "pod": answer.pod,
            "sent": round(self.sent, 4),
            "status": answer.status,
            "ttft": answer.ttft,
            "e2e": answer.e2e,
            "tokens": answer.tokens,
            "error": answer.error,
        }
