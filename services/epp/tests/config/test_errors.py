"""msgspec validation errors translated into field paths."""

import msgspec
import pytest

from igw.epp.config.errors import ConfigError, from_validation_error


class Inner(msgspec.Struct, forbid_unknown_fields=True):
    weight: float = 1.0


class Outer(msgspec.Struct, forbid_unknown_fields=True):
    items: list[Inner]


@pytest.mark.parametrize(
    ("doc", "base", "expected"),
    [
        pytest.param(
            {"items": [{"weigth": 1}]}, "", "items[0].weigth: unknown field", id="unknown"
        ),
        pytest.param({}, "", "items: missing required field", id="missing"),
        pytest.param(
            {"items": [{"weight": "x"}]},
            "p",
            "p.items[0].weight: expected `float`, got `str`",
            id="type-with-base",
        ),
        pytest.param(
            {"items": [], "x": 1},
            "plugins[2].parameters",
            "plugins[2].parameters.x: unknown field",
            id="root-level-with-base",
        ),
    ],
)
def test_paths(doc: dict[str, object], base: str, expected: str) -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.convert(doc, Outer)
    error = from_validation_error(info.value, base)
    assert isinstance(error, ConfigError)
    assert str(error) == expected
