"""Who may scrape `/metrics`: Kubernetes TokenReview and SubjectAccessReview, as upstream does it.

Upstream GIE puts its metrics server behind controller-runtime's
`filters.WithAuthenticationAndAuthorization` (`--metrics-endpoint-auth`, default true).
`KubeMetricsAuthorizer` asks the API server the same two questions:

1. Who is this? The request must carry `Authorization: Bearer <token>` (scheme in any case; the
   header is split on single spaces, as Kubernetes' bearer-token authenticator does). The token
   goes into a `TokenReview` (authentication.k8s.io/v1, `spec.token` only, no audiences).
   No token, or a token the API server does not authenticate: 401 `Unauthorized`.
2. May they? A `SubjectAccessReview` (authorization.k8s.io/v1) for the reviewed user: `user`,
   `uid`, `groups` plus `system:authenticated` (added as the API server's authenticated-group
   adder does, unless already there or `system:unauthenticated`), `extra`, and
   `nonResourceAttributes: {path: <the request's path>, verb: <its method, lower case>}`, so a
   Prometheus scraping `GET /metrics` needs `nonResourceURLs: ["/metrics"], verbs: ["get"]`.
   `status.allowed`: the metrics; otherwise 403 `Authorization denied for user <name>`.

A review that gets no answer (API server down, a timeout, our own service account lacking the
RBAC to create reviews, a malformed reply) is a 500 (`Authentication failed` or `Authorization
for user <name> failed`, upstream's bodies) and never lets the request through. The cause is
logged once when reviews start failing and once when they work again, not once per scrape.

Where igw differs on purpose: upstream answers 500 to a token the API server rejects (its
bearer-token authenticator reports "invalid bearer token" as an error, which the filter maps to
500); igw answers 401, as kube-apiserver itself does. Upstream retries a failing review with
backoff for up to ~5 s; igw fails that scrape at once and asks again at the next one.

Caching: each definitive answer (200, 401, 403) is kept per (token digest, verb, path) for
`ttl_s`, 30 s by default. Prometheus scrapes every 5-30 s, so without a cache every scrape would
cost the API server two reviews; with it, one pair per scraper per 30 s. 30 s also bounds how
long a revoked RoleBinding or a deleted service account keeps working (upstream: token reviews
1 min, allows 5 min, denials 30 s). Failures are never cached. The cache holds SHA-256 digests,
not tokens, and at most `max_entries` entries (expired ones go first, then the oldest).

Threads: `authorize` runs on the metrics server's request threads and blocks on the API server
(never call it from an event loop). The lock guards the cache and the failure state only; it is
not held across an API call, so two first scrapes with one token may both ask (harmless). The
`ApiClient` belongs to the caller, who closes it after the metrics server has stopped.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Protocol

import structlog

if TYPE_CHECKING:
    import kubernetes

__all__ = [
    "ALLOWED",
    "UNAUTHORIZED",
    "AccessDecision",
    "KubeMetricsAuthorizer",
    "MetricsAuthorizer",
    "bearer_token",
    "cluster_metrics_authorizer",
]

_log = structlog.get_logger(__name__)

_AUTHENTICATED = "system:authenticated"
_UNAUTHENTICATED = "system:unauthenticated"
_ANONYMOUS = "system:anonymous"


@dataclass(frozen=True, slots=True)
class AccessDecision:
    """The answer for one request: 200 lets it through; any other status is sent with `message`."""

    status: HTTPStatus
    message: str = ""

    @property
    def allowed(self) -> bool:
        return self.status == HTTPStatus.OK


ALLOWED = AccessDecision(HTTPStatus.OK)
UNAUTHORIZED = AccessDecision(HTTPStatus.UNAUTHORIZED, "Unauthorized")


class MetricsAuthorizer(Protocol):
    """Decides whether one request to the metrics server may be served.

    Called on the metrics server's request threads, several at once: an implementation must be
    thread-safe and may block. It must not raise: a failure to decide is a 5xx decision, so that
    no failure can let a request through.
    """

    def authorize(self, authorization: str | None, *, verb: str, path: str) -> AccessDecision:
        """`authorization` is the raw `Authorization` header (None if absent); `verb` is the
        lower-case HTTP method, `path` the request's path without its query."""
        ...


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None (Kubernetes' parsing)."""
    parts = (authorization or "").strip().split(" ")
    if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
        return None
    return parts[1]


@dataclass(frozen=True, slots=True)
class _User:
    """The authenticated user a TokenReview names; built at the untyped client boundary."""

    name: str
    uid: str | None
    groups: tuple[str, ...]
    extra: Mapping[str, list[str]] | None


class _ReviewError(Exception):
    """A review got no answer; `message` is the response body, the cause is chained."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class KubeMetricsAuthorizer:
    """A `MetricsAuthorizer` that asks the Kubernetes API server (see the module docstring)."""

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        *,
        ttl_s: float = 30.0,
        timeout_s: float = 10.0,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Imported here, not at the top: the client takes half a second to import, and only a
        # service that turns authentication on should pay for it.
        import kubernetes.client  # noqa: PLC0415

        self._authentication = kubernetes.client.AuthenticationV1Api(api_client)
        self._authorization = kubernetes.client.AuthorizationV1Api(api_client)
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[tuple[bytes, str, str], tuple[float, AccessDecision]] = {}
        self._failing = False

    def authorize(self, authorization: str | None, *, verb: str, path: str) -> AccessDecision:
        token = bearer_token(authorization)
        if token is None:
            return UNAUTHORIZED
        key = (hashlib.sha256(token.encode()).digest(), verb, path)
        cached = self._cached(key)
        if cached is not None:
            return cached
        try:
            decision = self._review(token, verb, path)
        except _ReviewError as failure:
            self._note_health(failure)
            return AccessDecision(HTTPStatus.INTERNAL_SERVER_ERROR, failure.message)
        self._note_health(None)
        self._store(key, decision)
        return decision

    def _review(self, token: str, verb: str, path: str) -> AccessDecision:
        user = self._authenticate(token)
        if user is None:
            return UNAUTHORIZED
        if self._authorize(user, verb, path):
            return ALLOWED
        _log.debug("metrics scrape denied", user=user.name, verb=verb, path=path)
        return AccessDecision(HTTPStatus.FORBIDDEN, f"Authorization denied for user {user.name}")

    def _authenticate(self, token: str) -> _User | None:
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        }
        try:
            reply = self._create(self._authentication.create_token_review, body)
            return _reviewed_user(reply.get("status"))
        except Exception as error:  # whatever failed, the request must not get through
            raise _ReviewError("Authentication failed") from error

    def _authorize(self, user: _User, verb: str, path: str) -> bool:
        groups = list(user.groups)
        if user.name != _ANONYMOUS and not {_AUTHENTICATED, _UNAUTHENTICATED} & set(groups):
            groups.append(_AUTHENTICATED)
        spec: dict[str, object] = {
            "user": user.name,
            "groups": groups,
            "nonResourceAttributes": {"path": path, "verb": verb},
        }
        if user.uid:
            spec["uid"] = user.uid
        if user.extra is not None:
            spec["extra"] = dict(user.extra)
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": spec,
        }
        try:
            reply = self._create(self._authorization.create_subject_access_review, body)
            return _allowed(reply.get("status"))
        except Exception as error:  # whatever failed, the request must not get through
            raise _ReviewError(f"Authorization for user {user.name} failed") from error

    def _create(self, create: Callable[..., Any], body: Mapping[str, object]) -> dict[str, Any]:
        """POSTs a review; the reply's JSON, read here rather than through the client's models
        so that a field a newer API server adds cannot break the parsing."""
        response = create(body, _preload_content=False, _request_timeout=self._timeout_s)
        try:
            reply = json.loads(response.data)
        finally:
            response.release_conn()  # unread, the connection would not go back to the pool
        if not isinstance(reply, dict):
            raise TypeError(f"review reply is not an object: {reply!r:.100}")
        return reply

    def _cached(self, key: tuple[bytes, str, str]) -> AccessDecision | None:
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:
                return None
            expires, decision = entry
            if expires <= self._clock():
                del self._cache[key]
                return None
            return decision

    def _store(self, key: tuple[bytes, str, str], decision: AccessDecision) -> None:
        with self._lock:
            now = self._clock()
            if len(self._cache) >= self._max_entries:
                for old in [k for k, (expires, _) in self._cache.items() if expires <= now]:
                    del self._cache[old]
            while len(self._cache) >= self._max_entries:
                del self._cache[next(iter(self._cache))]  # dicts keep insertion order
            self._cache[key] = (now + self._ttl_s, decision)

    def _note_health(self, failure: _ReviewError | None) -> None:
        """Logs when reviews start failing and when they work again, not once per scrape."""
        with self._lock:
            was_failing, self._failing = self._failing, failure is not None
        if failure is not None and not was_failing:
            _log.error(
                "metrics authentication unavailable: the Kubernetes API did not answer a review",
                reason=failure.message,
                error=_describe(failure.__cause__),
            )
        elif failure is None and was_failing:
            _log.info("metrics authentication available again")


def _reviewed_user(status: object) -> _User | None:
    """The user of an authenticated TokenReview status; None if not authenticated."""
    if not isinstance(status, dict) or status.get("authenticated") is not True:
        return None
    user = status.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("username"), str):
        raise TypeError(f"authenticated TokenReview without a user name: {status!r:.200}")
    groups = user.get("groups") or []
    extra = user.get("extra")
    return _User(
        name=user["username"],
        uid=user.get("uid") if isinstance(user.get("uid"), str) else None,
        groups=tuple(str(group) for group in groups),
        extra={str(k): [str(v) for v in vs] for k, vs in extra.items()}
        if isinstance(extra, dict)
        else None,
    )


def _allowed(status: object) -> bool:
    """A SubjectAccessReview status allows only if `allowed` and not also `denied`."""
    if not isinstance(status, dict):
        raise TypeError(f"SubjectAccessReview reply without a status: {status!r:.200}")
    return status.get("allowed") is True and status.get("denied") is not True


def _describe(error: BaseException | None) -> str:
    """A one-line cause: the client's `ApiException` text spans many lines (headers, body)."""
    if error is None:
        return ""
    status, reason = getattr(error, "status", None), getattr(error, "reason", None)
    if isinstance(status, int) and isinstance(reason, str):  # the client's ApiException
        return f"HTTP {status} {reason}" if status else reason
    return f"{type(error).__name__}: {error}".splitlines()[0]


def cluster_metrics_authorizer() -> tuple[KubeMetricsAuthorizer, kubernetes.client.ApiClient]:
    """The authorizer for `--metrics-endpoint-auth` (upstream's default) and the API client it
    asks, which the caller closes after the metrics server stopped.

    Raises `RuntimeError` saying to pass `--metrics-endpoint-auth=false` when no cluster is
    configured: serving the metrics unauthenticated instead would silently weaken a deployment.
    """
    from igw.common.kube import load_kube_client  # noqa: PLC0415 - kube imports the client

    try:
        client = load_kube_client()
    except RuntimeError as e:
        raise RuntimeError(
            "--metrics-endpoint-auth is on (the default), so scrapers' tokens are checked "
            f"with the Kubernetes API, which is not configured here ({e}); pass "
            "--metrics-endpoint-auth=false to serve /metrics without authentication"
        ) from e
    return KubeMetricsAuthorizer(client), client
