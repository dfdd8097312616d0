"""`header-based-testing-filter`: the endpoints the test header lists, in its order."""

import pytest

from igw.epp.framework import CycleState
from igw.epp.scheduling.plugins import HeaderBasedTestingFilter
from igw.epp.testing.builders import endpoint, request

EPS = [
    endpoint("a", address="10.0.0.1", port=8000),
    endpoint("a2", address="10.0.0.1", port=8001),
    endpoint("b", address="10.0.0.2", port=8000),
    endpoint("v6", address="fd00::1", port=8000),
]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("10.0.0.2", ["b"], id="ip"),
        pytest.param("10.0.0.1:8001", ["a2"], id="ip-port"),
        pytest.param("10.0.0.1", ["a", "a2"], id="ip-matches-every-port"),
        pytest.param("10.0.0.2,10.0.0.1:8000", ["b", "a"], id="header-order"),
        pytest.param("10.0.0.2, 10.0.0.2:8000", ["b"], id="deduplicated"),
        pytest.param("[fd00::1]:8000", ["v6"], id="ipv6-brackets-port"),
        pytest.param("[fd00::1]", ["v6"], id="ipv6-brackets"),
        pytest.param("fd00::1", ["v6"], id="ipv6-bare"),
        pytest.param("10.0.0.9", [], id="unknown"),
        pytest.param("10.0.0.1:x", [], id="bad-port-skipped"),
    ],
)
def test_selection(header: str, expected: list[str]) -> None:
    req = request(headers={"test-epp-endpoint-selection": header})
    kept = HeaderBasedTestingFilter().filter(req, CycleState(), EPS)
    assert [e.endpoint.name for e in kept] == expected


def test_without_the_header_nothing_is_left() -> None:
    assert HeaderBasedTestingFilter().filter(request(), CycleState(), EPS) == []
