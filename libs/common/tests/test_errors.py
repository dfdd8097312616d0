"""igw.common.errors: each error's HTTP status and upstream GIE's body text."""

from __future__ import annotations

import pytest

from igw.common import errors
from igw.common.errors import InferenceError

ANSWERED = [
    pytest.param(errors.BadRequestError, 400, "BadRequest", id="bad-request"),
    pytest.param(errors.UnauthorizedError, 401, "Unauthorized", id="unauthorized"),
    pytest.param(errors.ForbiddenError, 403, "Forbidden", id="forbidden"),
    pytest.param(errors.NotFoundError, 404, "NotFound", id="not-found"),
    # Upstream maps ResourceExhausted to 429 (its docs say 503; the code wins).
    pytest.param(errors.ResourceExhaustedError, 429, "ResourceExhausted", id="exhausted"),
    pytest.param(errors.InternalError, 500, "Internal", id="internal"),
    pytest.param(errors.ServiceUnavailableError, 503, "ServiceUnavailable", id="unavailable"),
]


@pytest.mark.parametrize(("cls", "status", "code"), ANSWERED)
def test_error_carries_status_and_upstream_body(
    cls: type[InferenceError], status: int, code: str
) -> None:
    error = cls("model not found in request body")

    assert error.status == status
    assert error.body() == f"inference error: {code} - model not found in request body"
    assert str(error) == error.message == "model not found in request body"


def test_stream_abort_has_no_http_status() -> None:
    """Status 0 is what makes the ext_proc layer fail the stream instead of answering."""
    error = errors.StreamAbortError("backend config broken")

    assert error.status == 0
    assert isinstance(error, InferenceError)


def test_every_exported_error_is_in_the_tree() -> None:
    exported = {getattr(errors, name) for name in errors.__all__}
    tested = {param.values[0] for param in ANSWERED} | {errors.StreamAbortError, InferenceError}

    assert exported == tested
    assert all(issubclass(cls, InferenceError) for cls in exported)
