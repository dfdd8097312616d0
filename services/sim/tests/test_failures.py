"""igw.sim.failures: llm-d's failure types, the injection rate, the deterministic header."""

from __future__ import annotations

from collections import Counter

import pytest

from igw.sim.failures import FAILURE_TYPES, FailureInjector


@pytest.mark.parametrize(
    ("name", "status"),
    [
        pytest.param("rate_limit", 429, id="rate_limit"),
        pytest.param("invalid_api_key", 401, id="invalid_api_key"),
        pytest.param("context_length", 400, id="context_length"),
        pytest.param("server_error", 503, id="server_error"),
        pytest.param("invalid_request", 400, id="invalid_request"),
        pytest.param("model_not_found", 404, id="model_not_found"),
    ],
)
def test_failure_types_answer_llm_ds_statuses(name: str, status: int) -> None:
    error = FailureInjector(100.0, [name], seed=1).check(None, "m")
    assert error is not None
    assert (FAILURE_TYPES[name].status, error.status) == (status, status)


def test_no_rate_no_failures() -> None:
    injector = FailureInjector(0.0)
    assert all(injector.check(None, "m") is None for _ in range(1000))


def test_the_rate_is_a_percentage_and_the_draws_follow_the_seed() -> None:
    def draws(seed: int) -> list[int | None]:
        injector = FailureInjector(25.0, ["rate_limit", "server_error"], seed=seed)
        return [e.status if (e := injector.check(None, "m")) else None for _ in range(4000)]

    counts = Counter(draws(7))
    assert 900 <= counts[429] + counts[503] <= 1100, "about 25 % fail"
    assert abs(counts[429] - counts[503]) < 200, "the listed types are drawn alike"
    assert draws(7) == draws(7)
    assert draws(7) != draws(8)


@pytest.mark.parametrize(
    ("header", "status", "message"),
    [
        pytest.param("429", 429, "Rate limit reached for my-model", id="named-type"),
        pytest.param(" 404 ", 404, "The model `my-model` does not exist.", id="spaces"),
        pytest.param("502", 502, "Injected error 502", id="status-without-a-type"),
        pytest.param("abc", 400, "x-return-error must be", id="not-a-number"),
        pytest.param("302", 400, "x-return-error must be", id="not-an-error"),
    ],
)
def test_the_header_fails_the_request_whatever_the_rate(
    header: str, status: int, message: str
) -> None:
    error = FailureInjector(0.0).check(header, "my-model")
    assert error is not None
    assert error.status == status
    assert error.message.startswith(message)


@pytest.mark.parametrize(
    ("rate", "types", "message"),
    [
        pytest.param(-1.0, (), "0-100", id="negative"),
        pytest.param(100.5, (), "0-100", id="over-100"),
        pytest.param(5.0, ("timeout",), "unknown failure types", id="unknown-type"),
    ],
)
def test_bad_settings_are_refused(rate: float, types: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FailureInjector(rate, types)
