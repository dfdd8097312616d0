"""TokenReview and SubjectAccessReview: the create-only review APIs a /metrics guard calls.

Each answers 201 with the posted object and a `status`, as the real server does (nothing is
stored). A TokenReview authenticates a token listed in `FakeKubeApi.tokens` as its username in
the `system:authenticated` group; an unknown token gets `user: {}` with `authenticated`
omitted (Go's `omitempty` for false). A SubjectAccessReview is allowed iff
(spec.user, nonResourceAttributes.verb, nonResourceAttributes.path) is in `FakeKubeApi.allowed`;
resourceAttributes are never allowed. Who may call the review APIs is not checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any

from igw.common.testing._kube_status import StatusError, invalid

__all__ = ["DEFAULT_AUDIENCES", "subject_access_review", "token_review"]

DEFAULT_AUDIENCES = ("https://kubernetes.default.svc.cluster.local",)
"""What the fake's authenticator accepts when a TokenReview names no audiences."""


def token_review(review: dict[str, Any], tokens: Mapping[str, str]) -> dict[str, Any]:
    spec = review.get("spec") or {}
    username = tokens.get(str(spec.get("token") or ""))
    if username is None:
        return {**review, "status": {"user": {}}}
    audiences = list(spec.get("audiences") or DEFAULT_AUDIENCES)
    user = {"username": username, "groups": ["system:authenticated"]}
    return {**review, "status": {"authenticated": True, "user": user, "audiences": audiences}}


def subject_access_review(
    review: dict[str, Any], allowed: Set[tuple[str, str, str]]
) -> dict[str, Any]:
    spec = review.get("spec") or {}
    resource = spec.get("resourceAttributes")
    non_resource = spec.get("nonResourceAttributes")
    if (resource is None) == (non_resource is None):
        raise _invalid(
            "spec.resourceAttributes",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )
    user = str(spec.get("user") or "")
    if not user and not spec.get("groups"):
        raise _invalid("spec.user", "at least one of user or group must be specified")
    granted = (
        non_resource is not None
        and (
            user,
            str(non_resource.get("verb") or ""),
            str(non_resource.get("path") or ""),
        )
        in allowed
    )
    verdict: dict[str, Any] = {"allowed": granted}
    if granted:
        verdict["reason"] = f'allowed by FakeKubeApi.allowed to User "{user}"'
    return {**review, "status": verdict}


def _invalid(field: str, why: str) -> StatusError:
    return invalid(
        "SubjectAccessReview.authorization.k8s.io",
        "authorization.k8s.io",
        "SubjectAccessReview",
        "",
        field=field,
        cause="FieldValueInvalid",
        why=f'Invalid value: "": {why}',
    )
