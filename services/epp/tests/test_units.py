"""Durations and quantities as configs write them."""

import pytest

from igw.epp.units import parse_duration, parse_quantity


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("200ms", 0.2, id="ms"),
        pytest.param("1m30s", 90.0, id="compound"),
        pytest.param("1.5h", 5400.0, id="fraction"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param(2, 2.0, id="number-is-seconds"),
    ],
)
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "1d", "-1s", "ms", "1s2"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param("1Gi", 2**30, id="binary"),
        pytest.param("500M", 500 * 10**6, id="decimal"),
        pytest.param("1e9", 10**9, id="exponent"),
        pytest.param(1000, 1000, id="int"),
    ],
)
def test_quantities(text: str | int, value: int) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["lots", "-1", "1Gb"])
def test_bad_quantities(text: str) -> None:
    with pytest.raises(ValueError, match="quantity"):
        parse_quantity(text)
