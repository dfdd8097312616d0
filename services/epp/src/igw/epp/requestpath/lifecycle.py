"""One request's state through the EPP, from its headers to the end of its response.

A `RequestLifecycle` is created per ext_proc stream and written only by that stream's exchange, on
the event loop: no locking. It holds what the director decided (`record`) and what the exchange
observed since, never Envoy messages (those are built from it by the serving core).
"""

from __future__ import annotations

from dataclasses import dataclass

from igw.epp.endpoints import Endpoint, InferenceRequest
from igw.epp.framework.parsing import Usage
from igw.epp.requestpath.director import Decision

__all__ = ["RequestLifecycle"]


@dataclass(slots=True)
class RequestLifecycle:
    received_at: float
    """`time.monotonic()` when the stream opened."""
    request_id: str = ""
    incoming_model: str = ""
    target_model: str = ""
    priority: int = 0
    fairness_id: str = "default-flow"
    request_stream: bool = False
    """The body asked for `"stream": true`."""
    request_bytes: int = 0
    inference: InferenceRequest | None = None
    targets: tuple[Endpoint, ...] = ()
    """Where the request was sent: the primary first, then Envoy's fallbacks."""
    dispatched: bool = False
    """The request went upstream (counted in `inference_objective_running_requests`)."""
    model_rewritten: bool = False
    # Response side.
    status: str = ""
    response_streaming: bool = False
    """The response is Server-Sent Events (by request flag or content type)."""
    served_endpoint: str | None = None
    """`envoy.lb/x-gateway-destination-endpoint-served`, when the data plane reports it."""
    response_bytes: int = 0
    usage: Usage | None = None
    response_done: bool = False
    body_skipped: bool = False
    """Lean mode: the response body was not read, so its end was never seen."""
    finished: bool = False
    """The completion hooks ran (they run exactly once)."""

    def record(self, decision: Decision) -> None:
        """Takes in what the director decided; the request is dispatched from here on."""
        control = decision.control
        self.request_id, self.fairness_id = control.request_id, control.fairness_id
        self.targets = decision.targets
        self.model_rewritten = decision.model_rewritten
        facts = decision.facts
        if facts is not None:
            self.incoming_model, self.target_model = facts.incoming_model, facts.target_model
            self.priority = facts.priority
            self.request_stream = facts.parsed.stream
            self.request_bytes = facts.inference.size_bytes
            self.inference = facts.inference
        self.dispatched = True

    @property
    def served(self) -> Endpoint | None:
        """The endpoint that served the request: the reported one if known, else the primary."""
        if self.served_endpoint is not None:
            for endpoint in self.targets:
                if endpoint.hostport == self.served_endpoint:
                    return endpoint
        return self.targets[0] if self.targets else None
