"""The EPP's request path: the Director (request -> `Decision`) and the per-stream exchange.

`Exchanges` is the `ExchangeFactory` the ext_proc servicer calls once per stream; each
`EppExchange` asks the `Director` for a decision, keeps the request's `RequestLifecycle` and
handles the response side. `ObjectiveStore` and `ModelRewriteStore` hold the pool's
InferenceObjective and InferenceModelRewrite objects for the Director, fed by reconcilers.
"""

from igw.epp.requestpath.director import (
    NO_CANDIDATES,
    NO_PODS,
    Decision,
    Director,
    RequestFacts,
)
from igw.epp.requestpath.exchange import EppExchange, Exchanges, ModelBackRewrite
from igw.epp.requestpath.lifecycle import RequestLifecycle
from igw.epp.requestpath.metrics import RequestMetrics
from igw.epp.requestpath.objectives import Objectives, ObjectiveStore, OwnPool, StaticObjectives
from igw.epp.requestpath.rewrites import ModelRewrites, ModelRewriteStore, RewriteChoice

__all__ = [
    "NO_CANDIDATES",
    "NO_PODS",
    "Decision",
    "Director",
    "EppExchange",
    "Exchanges",
    "ModelBackRewrite",
    "ModelRewriteStore",
    "ModelRewrites",
    "ObjectiveStore",
    "Objectives",
    "OwnPool",
    "RequestFacts",
    "RequestLifecycle",
    "RequestMetrics",
    "RewriteChoice",
    "StaticObjectives",
]
