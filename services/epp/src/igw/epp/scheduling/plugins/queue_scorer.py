"""`queue-scorer`: prefers the endpoint with the shortest waiting queue
(WaitingQueueSize).

Score = `(max - x) / (max - min)` over the candidates' values x; when all are equal every
endpoint scores 1.0. No parameters.
"""

from __future__ import annotations

from typing import ClassVar

from igw.epp.endpoints import Metrics
from igw.epp.scheduling.plugins._normalize import LeastLoadScorer

__all__ = ["QueueScorer"]


class QueueScorer(LeastLoadScorer):
    type_name: ClassVar[str] = "queue-scorer"

    @staticmethod
    def load(metrics: Metrics) -> float:
        return metrics.waiting
