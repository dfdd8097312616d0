"""The registry both services build on: explicit, duplicates raise, a check per service."""

from __future__ import annotations

from typing import ClassVar

import pytest

from igw.common.registry import Registry


class Alpha:
    type_name: ClassVar[str] = "alpha"


class Beta:
    type_name: ClassVar[str] = "beta"


class Strict(Registry[Alpha]):
    what = "strict plugin"

    def _check(self, plugin_type: type[Alpha]) -> None:
        if not plugin_type.type_name.startswith("a"):
            raise ValueError(f"{plugin_type.type_name!r} does not start with a")


def test_starts_with_the_table_it_is_given_and_nothing_else() -> None:
    registry: Registry[Alpha] = Registry([Alpha])
    assert registry.types() == ["alpha"]
    assert "alpha" in registry
    assert registry.get("alpha") is Alpha
    assert registry.get("beta") is None
    assert list(registry) == [Alpha]
    assert Registry[Alpha]().types() == []


def test_a_type_registered_twice_is_refused_naming_what_it_is() -> None:
    with pytest.raises(ValueError, match=r"^strict plugin type 'alpha' is registered twice$"):
        Strict([Alpha, Alpha])


def test_the_service_check_runs_before_anything_is_registered() -> None:
    registry = Strict()
    with pytest.raises(ValueError, match="does not start with a"):
        registry.register(Beta)  # type: ignore[arg-type]  # the wrong class, on purpose
    assert registry.types() == []


def test_an_empty_entry_point_group_adds_nothing() -> None:
    registry: Registry[Alpha] = Registry([Alpha])
    registry.register_entry_points("igw.tests.no-such-group")
    assert registry.types() == ["alpha"]
