"""`destination-endpoint-served-verifier` (for conformance tests, §1.6): reports, in a response
header, which endpoint the data plane says served the request.

The gateway is to put `envoy.lb/x-gateway-destination-endpoint-served = "ip:port"` in the filter
metadata of the response messages. This ResponseHeader plugin copies that value into the response
header `x-conformance-test-served-endpoint`, so a test client can check it against the endpoint
it asked for; without the namespace the header says `fail: missing envoy lb metadata`, without
the key `fail: missing destination endpoint served metadata` (upstream's texts). No parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Final

from igw.epp.endpoints import Endpoint, InferenceRequest
from igw.epp.framework.params import ParameterlessPlugin
from igw.epp.framework.response import Response

__all__ = ["SERVED_ENDPOINT_HEADER", "DestinationEndpointServedVerifier"]

SERVED_ENDPOINT_HEADER: Final = "x-conformance-test-served-endpoint"
_NAMESPACE: Final = "envoy.lb"
_SERVED_KEY: Final = "x-gateway-destination-endpoint-served"


class DestinationEndpointServedVerifier(ParameterlessPlugin):
    type_name: ClassVar[str] = "destination-endpoint-served-verifier"

    def response_header(
        self,
        request: InferenceRequest,  # noqa: ARG002 - protocol
        response: Response,
        endpoint: Endpoint | None,  # noqa: ARG002 - the data plane's word is what is checked
    ) -> None:
        lb = response.req_metadata.get(_NAMESPACE)
        if not isinstance(lb, Mapping):
            verdict = "fail: missing envoy lb metadata"
        else:
            served = lb.get(_SERVED_KEY)
            verdict = (
                served
                if isinstance(served, str)
                else "fail: missing destination endpoint served metadata"
            )
        response.headers[SERVED_ENDPOINT_HEADER] = verdict
