"""igw.common.telemetry.metrics_auth: /metrics behind TokenReview and SubjectAccessReview.

Real HTTP end to end: a client scrapes the real `MetricsServer`, whose `KubeMetricsAuthorizer`
asks `FakeKubeApi` (a fake kube-apiserver on loopback) through the official client. The fake runs
on the test's event loop, so every scrape runs in a thread.
"""

from __future__ import annotations

import asyncio
import http.client
from collections.abc import AsyncIterator, Iterator
from typing import Any

import kubernetes
import prometheus_client
import pytest
import structlog
from aiohttp import web

from igw.common.telemetry.metrics import MetricsServer
from igw.common.telemetry.metrics_auth import KubeMetricsAuthorizer, bearer_token
from igw.common.testing.kube_api import FakeKubeApi

PROMETHEUS = "system:serviceaccount:monitoring:prometheus"
NOBODY = "system:serviceaccount:default:nobody"
AUTHN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
AUTHZ_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
TTL_S = 30.0


class RecordingKubeApi(FakeKubeApi):
    """The fake, also keeping every posted review, and answering `users`' tokens in full."""

    def __init__(self) -> None:
        super().__init__()
        self.reviews: list[dict[str, Any]] = []
        self.users: dict[str, dict[str, Any]] = {}
        """Token -> TokenReview `status.user`, for users with a uid, groups or extra."""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return await super().handle(request)
        review = await request.json()  # aiohttp keeps the body for the fake to read again
        self.reviews.append(review)
        user = self.users.get(review.get("spec", {}).get("token"))
        if user is None:
            return await super().handle(request)
        self.requests.append((request.method, request.path, request.query_string))
        status = {"authenticated": True, "user": user}
        return web.json_response({**review, "status": status}, status=201)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def api() -> AsyncIterator[RecordingKubeApi]:
    async with RecordingKubeApi() as fake:
        fake.tokens = {"prometheus-token": PROMETHEUS, "nobody-token": NOBODY}
        fake.allowed = {(PROMETHEUS, "get", "/metrics")}
        yield fake


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(api: RecordingKubeApi, clock: Clock) -> Iterator[MetricsServer]:
    configuration = kubernetes.client.Configuration()
    configuration.host = api.url
    client = kubernetes.client.ApiClient(configuration)
    registry = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("igw_test_scrapes", "A test counter.", registry=registry).inc(5)
    authorizer = KubeMetricsAuthorizer(client, ttl_s=TTL_S, clock=clock)
    with MetricsServer(registry, host="127.0.0.1", port=0, authorizer=authorizer) as metrics:
        yield metrics
    client.close()  # type: ignore[no-untyped-call]  # kubernetes is untyped


def get(port: int, token: str | None = None) -> tuple[int, dict[str, str], str]:
    """Status, headers and body of a real `GET /metrics`, with `Bearer token` if given."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/metrics", headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        connection.close()


async def scrape(server: MetricsServer, token: str | None = None) -> tuple[int, str]:
    status, _, body = await asyncio.to_thread(get, server.port, token)
    return status, body


def reviews_asked(api: RecordingKubeApi) -> list[str]:
    return [path for method, path, _ in api.requests if method == "POST"]


async def test_a_permitted_token_gets_the_metrics(
    api: RecordingKubeApi, server: MetricsServer
) -> None:
    status, body = await scrape(server, "prometheus-token")
    assert status == 200
    assert "igw_test_scrapes_total 5.0" in body
    assert reviews_asked(api) == [AUTHN_REVIEWS, AUTHZ_REVIEWS]


@pytest.mark.parametrize(
    ("token", "answer", "reviews"),
    [
        pytest.param(None, (401, "Unauthorized"), [], id="no-token"),
        # The API server does not know the token. Upstream answers 500 here, see the module.
        pytest.param("stolen", (401, "Unauthorized"), [AUTHN_REVIEWS], id="unknown-token"),
        pytest.param(
            "nobody-token",
            (403, f"Authorization denied for user {NOBODY}"),
            [AUTHN_REVIEWS, AUTHZ_REVIEWS],
            id="not-permitted",
        ),
    ],
)
async def test_a_refused_scrape_gets_the_status_and_no_metrics(
    api: RecordingKubeApi,
    server: MetricsServer,
    token: str | None,
    answer: tuple[int, str],
    reviews: list[str],
) -> None:
    status, headers, body = await asyncio.to_thread(get, server.port, token)
    assert (status, body) == (answer[0], f"{answer[1]}\n")
    assert headers.get("WWW-Authenticate") == ("Bearer" if status == 401 else None)
    assert reviews_asked(api) == reviews


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Basic cHJvbWV0aGV1czp4", id="not-bearer"),
        pytest.param("Bearer", id="no-token"),
        pytest.param("Bearer  prometheus-token", id="two-spaces"),
        pytest.param("", id="empty"),
    ],
)
def test_headers_without_a_bearer_token(header: str) -> None:
    # Kubernetes splits on single spaces, so a doubled space leaves an empty token.
    assert bearer_token(header) is None


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Bearer tok", id="canonical"),
        pytest.param("bearer tok", id="lower-case-scheme"),
        pytest.param("  BEARER tok trailing  ", id="upper-case-and-extra-words"),
    ],
)
def test_headers_with_a_bearer_token(header: str) -> None:
    assert bearer_token(header) == "tok"


async def test_the_reviews_carry_the_user_and_the_request_as_upstream_sends_them(
    api: RecordingKubeApi, server: MetricsServer
) -> None:
    api.users["full-token"] = {
        "username": "jane",
        "uid": "42",
        "groups": ["team-a"],
        "extra": {"scopes": ["metrics"]},
    }
    api.allowed.add(("jane", "get", "/metrics"))
    assert (await scrape(server, "full-token"))[0] == 200
    token_review, access_review = api.reviews
    assert token_review == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": "full-token"},
    }
    # system:authenticated is added as the API server's authenticated-group adder does.
    assert access_review == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": "jane",
            "uid": "42",
            "groups": ["team-a", "system:authenticated"],
            "extra": {"scopes": ["metrics"]},
            "nonResourceAttributes": {"path": "/metrics", "verb": "get"},
        },
    }


async def test_the_authenticated_group_is_not_added_twice(
    api: RecordingKubeApi, server: MetricsServer
) -> None:
    await scrape(server, "prometheus-token")
    # The fake's TokenReview already names the group; no uid and no extra are sent when absent.
    assert api.reviews[1]["spec"] == {
        "user": PROMETHEUS,
        "groups": ["system:authenticated"],
        "nonResourceAttributes": {"path": "/metrics", "verb": "get"},
    }


@pytest.mark.parametrize(
    ("token", "status"),
    [
        pytest.param("prometheus-token", 200, id="allowed"),
        pytest.param("nobody-token", 403, id="denied"),
        pytest.param("stolen", 401, id="unauthenticated"),
    ],
)
async def test_a_decision_is_kept_for_the_ttl_then_asked_again(
    api: RecordingKubeApi, server: MetricsServer, clock: Clock, token: str, status: int
) -> None:
    assert (await scrape(server, token))[0] == status
    asked = len(api.requests)
    clock.now += TTL_S - 1
    assert (await scrape(server, token))[0] == status
    assert len(api.requests) == asked  # a Prometheus scraping every few seconds costs nothing
    clock.now += 1
    assert (await scrape(server, token))[0] == status
    assert len(api.requests) == 2 * asked


async def test_one_tokens_decision_is_not_anothers(server: MetricsServer) -> None:
    assert (await scrape(server, "prometheus-token"))[0] == 200
    assert (await scrape(server, "nobody-token"))[0] == 403
    assert (await scrape(server, "stolen"))[0] == 401
    assert (await scrape(server))[0] == 401


@pytest.mark.parametrize("code", [pytest.param(503, id="503"), pytest.param(500, id="500")])
async def test_a_failing_api_server_fails_the_scrape_and_is_not_cached(
    api: RecordingKubeApi, server: MetricsServer, code: int
) -> None:
    api.fail_next(1, status=code)
    status, body = await scrape(server, "prometheus-token")
    assert (status, body) == (500, "Authentication failed\n")
    # Not remembered: the next scrape asks again and gets through.
    assert (await scrape(server, "prometheus-token"))[0] == 200


async def test_an_unreachable_api_server_fails_the_scrape(
    api: RecordingKubeApi, server: MetricsServer
) -> None:
    await api.stop()
    status, body = await scrape(server, "prometheus-token")
    assert status == 500
    assert "igw_test_scrapes" not in body


async def test_an_outage_is_logged_when_it_starts_and_when_it_ends(
    api: RecordingKubeApi, server: MetricsServer
) -> None:
    with structlog.testing.capture_logs() as logs:
        api.fail_next(3)
        for _ in range(3):
            assert (await scrape(server, "prometheus-token"))[0] == 500
        assert (await scrape(server, "prometheus-token"))[0] == 200
        assert (await scrape(server, "nobody-token"))[0] == 403
    events = [(log["log_level"], log["event"]) for log in logs if log["log_level"] != "debug"]
    assert events == [
        ("error", "metrics authentication unavailable: the Kubernetes API did not answer a review"),
        ("info", "metrics authentication available again"),
    ]
    assert logs[0]["error"] == "HTTP 503 Service Unavailable"
