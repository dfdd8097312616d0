"""The EPP's failure paths through a real Envoy: the gateway every failure test runs against.

DESIGN §7: every bad input gets a clear error and leaves the service healthy. Each case checks
what a user or an operator would notice, in both EPP response modes (compatible: response body
FULL_DUPLEX_STREAMED, trailers SEND; lean: STREAMED, trailers SKIP), and then that nothing was
left behind (`Gateway.settled()`, `Gateway.still_serves()`):

* the gateway holds no ext_proc stream open to the EPP (Envoy's own gauge of active requests on
  the EPP's cluster, as an operator would read it from Envoy's admin `/stats`);
* `inference_objective_running_requests` is back to 0;
* the EPP's in-flight counts (the admin `ListEndpoints` over gRPC, as `igw-epp-admin` reads
  them; kept by the configured `inflight-load-producer`) are back to 0;
* and the EPP still reports SERVING on its health port and serves a normal request.

What the EPP counts for a failure follows upstream (reference §7, §1.10): a response whose status
is not 200 is one `inference_objective_request_error_total{error_code="ModelServerError"}`, also
when Envoy made the answer itself (a 503 for a pod that refuses connections). A client that
leaves, or a model server that dies after a 200, is no error there: upstream's stream ends with
`Canceled` and records nothing but the running gauge going down. Such a request is still in
`inference_objective_request_total` (it was scheduled) and is missing from the latency and
response-size histograms, which record only responses whose end was seen. A request whose
body the EPP cannot rewrite (500) is refused before it is scheduled, so it is never counted as
scheduled nor in flight (upstream finds this after the pick and has to take the count back).

Model servers: `GeneratingModelServer`s (real SSE, a settable token interval, a gate that freezes
generation, `x-return-error` failure injection) and `ScriptedModelServer`s (byte-exact records of
what arrived; `Answer.drop_after` drops the connection mid-answer, as a crashed server's kernel
does). The EPP runs in-process over real gRPC; endpoints read as freshly scraped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from igw.common.testing.pytest_plugin import EnvoyFactory
from igw.epp.server import EppOptions
from igw.epp.testing.gateway import RESPONSE_MODES, GatewaySettings, ResponseMode, open_gateway
from igw.epp.testing.started_gateway import Gateway

CONFIG = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: inflight-load-producer
- type: queue-scorer
- type: kv-cache-utilization-scorer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
  - pluginRef: kv-cache-utilization-scorer
"""


@pytest.fixture(params=list(RESPONSE_MODES))
def mode(request: pytest.FixtureRequest) -> ResponseMode:
    mode: ResponseMode = request.param
    return mode


@pytest.fixture(params=[pytest.param("m", id="as-asked"), pytest.param("t", id="rewritten")])
def target(request: pytest.FixtureRequest) -> str:
    """The model the pod is asked for: the client's "m", or "t" by the rewrite header.

    A rewritten one must be written back in the answer, so the EPP reads the response body in
    the lean mode too (and sees its end, or that it never came).
    """
    return str(request.param)


@pytest.fixture
async def gateway(mode: ResponseMode, envoy_factory: EnvoyFactory) -> AsyncIterator[Gateway]:
    settings = GatewaySettings(epp=EppOptions(config_text=CONFIG), response_mode=mode)
    async with open_gateway(envoy_factory, settings) as gateway:
        # The leak checks read the in-flight counts, so they must be tracked.
        assert await gateway.in_flight() == 0
        yield gateway
