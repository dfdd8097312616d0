"""`destination-endpoint-served-verifier`: the data plane's served endpoint as a header."""

from collections.abc import Mapping
from typing import Any

import pytest

from igw.epp.framework import Response
from igw.epp.scheduling.plugins import DestinationEndpointServedVerifier
from igw.epp.testing.builders import endpoint, request


@pytest.mark.parametrize(
    ("metadata", "header"),
    [
        pytest.param({"envoy.lb": {"x-gateway-destination-endpoint-served": "10.0.0.3:8000",
                                   "x-gateway-destination-endpoint": "10.0.0.2:8000"}},
                     "10.0.0.3:8000", id="served"),
        pytest.param({"envoy.lb": {"x-gateway-destination-endpoint": "10.0.0.2:8000"}},
                     "fail: missing destination endpoint served metadata", id="no-served-key"),
        pytest.param({"envoy.lb": {"x-gateway-destination-endpoint-served": 8000}},
                     "fail: missing destination endpoint served metadata", id="not-a-string"),
        pytest.param({"other": {"x-gateway-destination-endpoint-served": "10.0.0.3:8000"}},
                     "fail: missing envoy lb metadata", id="no-lb-namespace"),
        pytest.param({}, "fail: missing envoy lb metadata", id="no-metadata"),
    ],
)  # fmt: skip
def test_reports_what_the_data_plane_says(metadata: Mapping[str, Any], header: str) -> None:
    response = Response("r1", {":status": "200"}, metadata)
    # The primary target was 10.0.0.2; only the data plane's report counts.
    primary = endpoint("pod-2-rank-0", address="10.0.0.2").endpoint
    DestinationEndpointServedVerifier().response_header(request(), response, primary)
    assert response.headers == {":status": "200", "x-conformance-test-served-endpoint": header}
