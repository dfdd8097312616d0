"""The EPP's request path: the Director (request -> destination) and the per-stream exchange.

`Director.exchange` is the `ExchangeFactory` the ext_proc servicer calls once per stream; the
exchange keeps the request's `RequestLifecycle` and handles the response side.
"""

from igw.epp.requestpath.director import NO_CANDIDATES, NO_PODS, Director
from igw.epp.requestpath.exchange import EppExchange, ModelBackRewrite
from igw.epp.requestpath.lifecycle import RequestLifecycle
from igw.epp.requestpath.metrics import RequestMetrics
from igw.epp.requestpath.objectives import Objectives, StaticObjectives

__all__ = [
    "NO_CANDIDATES",
    "NO_PODS",
    "Director",
    "EppExchange",
    "ModelBackRewrite",
    "Objectives",
    "RequestLifecycle",
    "RequestMetrics",
    "StaticObjectives",
]
