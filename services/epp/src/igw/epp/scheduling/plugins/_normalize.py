"""Min-max normalisation shared by the load scorers, and their common base."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from igw.epp.endpoints import EndpointState, InferenceRequest, Metrics
from igw.epp.framework.cycle_state import CycleState
from igw.epp.framework.params import ParameterlessPlugin

__all__ = ["LeastLoadScorer", "inverted_min_max"]


def inverted_min_max(values: Sequence[float]) -> list[float]:
    """`(max - v) / (max - min)`: the least loaded scores 1.0, the most 0.0; all equal -> 1.0."""
    if not values:
        return []
    low, high = min(values), max(values)
    if high == low:
        return [1.0] * len(values)
    span = high - low
    return [(high - v) / span for v in values]


class LeastLoadScorer(ParameterlessPlugin):
    """A distribution scorer preferring the candidate with the least of one scraped figure.

    Subclasses name the figure (`load`); the score is `inverted_min_max` over the candidates.
    """

    category: ClassVar[Literal["distribution", "affinity"]] = "distribution"

    @staticmethod
    def load(metrics: Metrics) -> float:
        raise NotImplementedError

    def score(
        self,
        request: InferenceRequest,  # noqa: ARG002 - protocol
        state: CycleState,  # noqa: ARG002 - protocol
        endpoints: Sequence[EndpointState],
    ) -> Sequence[float]:
        load = self.load
        return inverted_min_max([load(e.metrics) for e in endpoints])
