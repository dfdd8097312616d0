"""`concurrency-detector`: in-flight accounting, saturation and filtering."""

import pytest

from igw.epp.framework import CycleState, ProfileResult, SchedulingResult
from igw.epp.scheduling.plugins import ConcurrencyDetector
from igw.epp.testing.builders import endpoint, endpoints, request


def send(d: ConcurrencyDetector, request_id: str, target: str, size: int = 0) -> None:
    result = SchedulingResult({"default": ProfileResult((endpoint(target),))}, "default")
    d.pre_request(request(request_id=request_id, size_bytes=size), CycleState(), result)


def test_requests_mode_saturation_and_completion() -> None:
    d = ConcurrencyDetector(max_concurrency=2)
    eps = endpoints(2)
    send(d, "r1", "pod-0-rank-0")
    send(d, "r2", "pod-0-rank-0")
    assert d.saturation(eps) == pytest.approx(0.5)
    kept = d.filter(request(), CycleState(), eps)
    assert [e.endpoint.name for e in kept] == ["pod-1-rank-0"]
    d.response_complete(request(request_id="r1"), eps[0].endpoint)
    d.response_complete(request(request_id="r1"), eps[0].endpoint)  # twice: counted once
    assert d.saturation(eps) == pytest.approx(0.25)


def test_tokens_mode_uses_the_estimate() -> None:
    d = ConcurrencyDetector(mode="tokens", max_token_concurrency=1000)
    send(d, "r1", "pod-0-rank-0", size=400)  # 400 bytes / 4 x 2.5 = 250 tokens
    assert d.saturation(endpoints(1)) == pytest.approx(0.25)


def test_all_at_limit_keeps_all_and_none_is_saturated() -> None:
    d = ConcurrencyDetector(max_concurrency=1)
    send(d, "r1", "pod-0-rank-0")
    eps = endpoints(1)
    assert list(d.filter(request(), CycleState(), eps)) == eps
    assert d.saturation([]) == 1.0
