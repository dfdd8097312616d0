"""The one error tree igw services raise, each class carrying the HTTP status Envoy answers with.

    InferenceError                    (abstract: never raised itself)
    ├── BadRequestError               400  BadRequest
    ├── UnauthorizedError             401  Unauthorized
    ├── ForbiddenError                403  Forbidden
    ├── NotFoundError                 404  NotFound
    ├── ResourceExhaustedError        429  ResourceExhausted
    ├── InternalError                 500  Internal
    ├── ServiceUnavailableError       503  ServiceUnavailable
    └── StreamAbortError              none: the gRPC stream fails instead, so Envoy applies the
                                      filter's failure mode (fail open or closed)

The ext_proc layer turns an `InferenceError` with a status into an Envoy `ImmediateResponse` whose
body is upstream GIE's plain text `inference error: <Code> - <message>` (`envoy.immediate_response`
renders it); a `StreamAbortError` aborts the stream, as upstream does for its unmapped codes.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BadRequestError",
    "ForbiddenError",
    "InferenceError",
    "InternalError",
    "NotFoundError",
    "ResourceExhaustedError",
    "ServiceUnavailableError",
    "StreamAbortError",
    "UnauthorizedError",
]


class InferenceError(Exception):
    """Base of every error a request can fail with; `status` 0 means "no HTTP answer"."""

    status: ClassVar[int] = 0
    code: ClassVar[str] = "Unknown"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> str:
        """The response body, byte-for-byte what upstream GIE sends."""
        return f"inference error: {self.code} - {self.message}"


class BadRequestError(InferenceError):
    status = 400
    code = "BadRequest"


class UnauthorizedError(InferenceError):
    status = 401
    code = "Unauthorized"


class ForbiddenError(InferenceError):
    status = 403
    code = "Forbidden"


class NotFoundError(InferenceError):
    status = 404
    code = "NotFound"


class ResourceExhaustedError(InferenceError):
    status = 429
    code = "ResourceExhausted"


class InternalError(InferenceError):
    status = 500
    code = "Internal"


class ServiceUnavailableError(InferenceError):
    status = 503
    code = "ServiceUnavailable"


class StreamAbortError(InferenceError):
    """Fails the ext_proc stream itself; Envoy then applies `failure_mode_allow`."""
