"""Admission: only sheddable requests are shed, and only when every pod is saturated (the gateway
and the pods: conftest.py)."""

from __future__ import annotations

import pytest

from igw.epp.requestpath.headers import OBJECTIVE
from igw.epp.server import EppOptions
from igw.epp.testing.gateway import GatewaySettings, StartGateway
from igw.epp.testing.model_servers import ScriptedModelServer
from igw.epp.testing.openai_requests import completion
from igw.epp.testing.started_gateway import endpoint_for

pytestmark = pytest.mark.envoy

# Upstream's answer (reference §1.10), byte for byte.
SHED = b"inference error: ResourceExhausted - system saturated, sheddable request dropped"
SATURATED = ((6, 0.2), (0, 0.85), (10, 0.9))  # each pod over the queue (5) or KV (0.8) threshold
WITH_ROOM = ((0, 0.1), (1, 0.2), (2, 0.3))


@pytest.mark.parametrize(
    ("objective", "load", "status"),
    [
        pytest.param(None, SATURATED, 200, id="do-not-shed-by-default"),
        pytest.param("critical", SATURATED, 200, id="critical-saturated-admitted"),
        pytest.param("batch", SATURATED, 429, id="sheddable-saturated-shed"),
        pytest.param("batch", WITH_ROOM, 200, id="sheddable-with-room-admitted"),
    ],
)
async def test_only_sheddable_requests_are_shed_and_only_when_saturated(
    start_gateway: StartGateway,
    pods: tuple[ScriptedModelServer, ...],
    objective: str | None,
    load: tuple[tuple[int, float], ...],
    status: int,
) -> None:
    epp = EppOptions(objectives={"batch": -1, "critical": 2})
    gateway = await start_gateway(GatewaySettings(epp=epp))
    gateway.route_to(
        *(
            endpoint_for(pod, waiting=waiting, kv=kv)
            for pod, (waiting, kv) in zip(pods, load, strict=True)
        )
    )
    headers = {} if objective is None else {OBJECTIVE: objective}
    got, body = await gateway.post(completion("m", "test4", max_tokens=100), **headers)

    assert got == status, body
    if status == 429:
        assert body == SHED
        assert sum(len(pod.received) for pod in pods) == 0
        labels = {"model_name": "m", "target_model_name": "m", "error_code": "ResourceExhausted"}
        assert gateway.metric("inference_objective_request_error_total", **labels) == 1
    else:
        assert sum(len(pod.received) for pod in pods) == 1
        priority = {None: "0", "critical": "2", "batch": "-1"}[objective]
        labels = {"model_name": "m", "target_model_name": "m", "priority": priority}
        assert gateway.metric("inference_objective_request_total", **labels) == 1
