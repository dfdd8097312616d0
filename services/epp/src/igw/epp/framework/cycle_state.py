"""The per-request bag plugins share during one scheduling cycle, read and written by typed keys.

A `CycleState` lives for one request: DataProducers write into it in PrepareData, filters and
scorers read it during scheduling, PreRequest hooks read it again after the pick. Two kinds of
entries, each behind its own key type so they cannot be mixed up:

* `StateKey[T]`: one value per request (e.g. the prefix hashes a producer computed);
* `AttributeKey[T]`: one value per endpoint, by endpoint name (e.g. how many prefix blocks each
  endpoint holds). These are what producers declare in `produces` and consumers in `consumes`.

Only the event loop touches a cycle state, so there is no locking.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar, cast

__all__ = ["AttributeKey", "CycleState", "StateKey"]

T = TypeVar("T")

_EMPTY: Mapping[str, Any] = {}


class StateKey(Generic[T]):
    """Names a per-request value of type `T`; compare keys by identity, name them for logs."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"StateKey({self.name!r})"


class AttributeKey(Generic[T]):
    """Names a per-endpoint value of type `T`; producers and consumers match keys by `name`."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"AttributeKey({self.name!r})"


class CycleState:
    """Values and per-endpoint attributes of one request's scheduling cycle."""

    __slots__ = ("_attributes", "_values")

    def __init__(self) -> None:
        self._values: dict[StateKey[Any], Any] = {}
        self._attributes: dict[str, dict[str, Any]] = {}

    def read(self, key: StateKey[T]) -> T | None:
        return cast("T | None", self._values.get(key))

    def write(self, key: StateKey[T], value: T) -> None:
        self._values[key] = value

    def attributes(self, key: AttributeKey[T]) -> Mapping[str, T]:
        """Endpoint name -> value for every endpoint a producer wrote; empty if none did."""
        return cast("Mapping[str, T]", self._attributes.get(key.name, _EMPTY))

    def set_attributes(self, key: AttributeKey[T], values: Mapping[str, T]) -> None:
        """Replaces every endpoint's value of `key` at once (one copy, no per-endpoint calls)."""
        self._attributes[key.name] = dict(values)

    def set_attribute(self, key: AttributeKey[T], endpoint: str, value: T) -> None:
        per_endpoint = self._attributes.get(key.name)
        if per_endpoint is None:
            per_endpoint = self._attributes[key.name] = {}
        per_endpoint[endpoint] = value
