"""Failure injection, with llm-d's simulator's types, rate and deterministic header.

Each inference request (completions, chat completions, embeddings) first asks the pod's
`FailureInjector`:

* a request header `x-return-error: <status>` (400-599) fails that request with that status, the
  failure type of that status if there is one (so `429` is a `rate_limit` answer), otherwise a
  generic injected error. This is the deterministic way for a test to see a pod fail;
* otherwise, with probability `--failure-injection-rate` percent, the request fails with a type
  drawn uniformly from `--failure-types` (all six when none are given).

Draws come from a `random.Random` seeded with `--seed`, so a run with a fixed seed and a fixed
request order fails the same requests. Failure bodies are OpenAI error objects like every other
error igw-sim answers.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from igw.sim.openai_shapes import ApiError

__all__ = ["FAILURE_TYPES", "RETURN_ERROR_HEADER", "FailureInjector", "FailureType"]

RETURN_ERROR_HEADER: Final = "x-return-error"


@dataclass(frozen=True, slots=True)
class FailureType:
    status: int
    message: str
    """May name `{model}`."""
    param: str | None = None


FAILURE_TYPES: Final[Mapping[str, FailureType]] = {
    "rate_limit": FailureType(429, "Rate limit reached for {model}: too many requests per minute."),
    "invalid_api_key": FailureType(401, "Incorrect API key provided."),
    "context_length": FailureType(
        400,
        "This model's maximum context length was exceeded by the request (injected failure).",
        param="messages",
    ),
    "server_error": FailureType(503, "The server is overloaded or not ready yet."),
    "invalid_request": FailureType(
        400, "Invalid request: a required parameter is missing (injected failure).", "model"
    ),
    "model_not_found": FailureType(404, "The model `{model}` does not exist.", param="model"),
}


class FailureInjector:
    """Decides, per request, whether it fails and how; see the module docstring."""

    def __init__(
        self, rate_percent: float, types: Iterable[str] = (), *, seed: int | None = None
    ) -> None:
        if not 0.0 <= rate_percent <= 100.0:
            raise ValueError(f"failure injection rate must be 0-100 percent, got {rate_percent}")
        names = tuple(types) or tuple(FAILURE_TYPES)
        unknown = sorted(set(names) - set(FAILURE_TYPES))
        if unknown:
            known = ", ".join(FAILURE_TYPES)
            raise ValueError(f"unknown failure types {unknown}; known: {known}")
        self._rate = rate_percent / 100.0
        self._types = names
        self._rng = random.Random(seed)  # noqa: S311 - simulation, not cryptography

    def check(self, header: str | None, model: str) -> ApiError | None:
        """The error this request fails with, or None to serve it."""
        if header is not None:
            return _forced(header.strip(), model)
        if self._rate and self._rng.random() < self._rate:
            name = self._types[self._rng.randrange(len(self._types))]
            return _error(FAILURE_TYPES[name], model)
        return None


def _forced(value: str, model: str) -> ApiError:
    status = int(value) if value.isdigit() else 0
    if not 400 <= status <= 599:
        return ApiError(
            400, f"{RETURN_ERROR_HEADER} must be an HTTP error status 400-599, got {value!r}."
        )
    for failure in FAILURE_TYPES.values():
        if failure.status == status:
            return _error(failure, model)
    return ApiError(status, f"Injected error {status} ({RETURN_ERROR_HEADER}).")


def _error(failure: FailureType, model: str) -> ApiError:
    return ApiError(failure.status, failure.message.format(model=model), param=failure.param)
