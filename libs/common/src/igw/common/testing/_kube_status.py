"""The fake API server's errors: each is a `meta/v1 Status` with kube-apiserver's reason and text.

    StatusError (code, reason, message, details)
        raised anywhere below the HTTP handler, answered as the Status body with `code`

The builders reproduce `k8s.io/apimachinery/pkg/api/errors`: the same reasons, the same message
shapes (`leases.coordination.k8s.io "x" not found`) and `details.kind` holding the resource plural
as the real server does ("Yes we set Kind field to resource", `store.go`). An `ERROR` watch event
carries the same Status as its object.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "REASONS",
    "StatusError",
    "already_exists",
    "bad_request",
    "conflict",
    "expired",
    "invalid",
    "method_not_allowed",
    "not_found",
    "resource_not_found",
    "too_large_resource_version",
    "unsupported_media_type",
]

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
"""Status reasons by code, as `NewGenericServerResponse` and friends choose them."""


class StatusError(Exception):
    """An API failure; `status()` is the body kube-apiserver would send."""

    def __init__(
        self, code: int, message: str, *, reason: str | None = None, details: dict[str, Any] | None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason if reason is not None else REASONS.get(code, "Unknown")
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    """StatusDetails without empty fields, as Go's `omitempty` renders them."""
    return {
        key: value for key, value in (("name", name), ("group", group), ("kind", kind)) if value
    }


def not_found(qualified: str, group: str, plural: str, name: str) -> StatusError:
    return StatusError(
        404, f'{qualified} "{name}" not found', details=_details(name, group, plural)
    )


def resource_not_found() -> StatusError:
    """No such path: an unknown group, version, resource or subresource."""
    return StatusError(404, "the server could not find the requested resource", details={})


def already_exists(qualified: str, group: str, plural: str, name: str) -> StatusError:
    return StatusError(
        409,
        f'{qualified} "{name}" already exists',
        reason="AlreadyExists",
        details=_details(name, group, plural),
    )


def conflict(qualified: str, group: str, plural: str, name: str, why: str) -> StatusError:
    return StatusError(
        409,
        f'Operation cannot be fulfilled on {qualified} "{name}": {why}',
        details=_details(name, group, plural),
    )


def invalid(
    qualified_kind: str, group: str, kind: str, name: str, *, field: str, cause: str, why: str
) -> StatusError:
    """422 Invalid; `cause` is the field error type (`FieldValueInvalid`, `FieldValueRequired`)."""
    details = {
        **_details(name, group, kind),
        "causes": [{"reason": cause, "message": why, "field": field}],
    }
    return StatusError(
        422, f'{qualified_kind} "{name}" is invalid: {field}: {why}', details=details
    )


def bad_request(message: str) -> StatusError:
    return StatusError(400, message, details=None)


def method_not_allowed() -> StatusError:
    message = "the server does not allow this method on the requested resource"
    return StatusError(405, message, details={})


def unsupported_media_type(message: str) -> StatusError:
    return StatusError(415, message, details=None)


def expired(message: str) -> StatusError:
    return StatusError(410, message, details=None)


def too_large_resource_version(requested: int, current: int) -> StatusError:
    """What the watch cache answers when asked for a resourceVersion it has not reached."""
    cause = {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
    details = {"causes": [cause], "retryAfterSeconds": 1}
    message = f"Too large resource version: {requested}, current: {current}"
    return StatusError(504, message, details=details)
