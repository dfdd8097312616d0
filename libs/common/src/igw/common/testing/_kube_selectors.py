"""Label and field selectors, parsed and matched as kube-apiserver does for LIST and WATCH.

Label selectors: `k=v`, `k==v`, `k!=v` (also true when `k` is absent), `k`, `!k`,
`k in (a,b)`, `k notin (a,b)` (also true when absent), `k>n`, `k<n`; comma means AND.
Field selectors: `f=v`, `f==v`, `f!=v` over `metadata.name`, `metadata.namespace` and the
resource's own field labels (a Pod's `spec.nodeName`, `status.phase`, ...); any other field is a
400 `field label not supported`, as the real server answers. Escaped commas are not parsed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from igw.common.testing._kube_status import bad_request

__all__ = ["Selector"]

_KEY = r"[A-Za-z0-9](?:[-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_EXISTS = re.compile(rf"(!?)\s*({_KEY})")
_EQUALITY = re.compile(rf"({_KEY})\s*(==|=|!=)\s*({_VALUE})")
_SET = re.compile(rf"({_KEY})\s+(in|notin)\s*\(([^()]*)\)")
_ORDER = re.compile(rf"({_KEY})\s*([<>])\s*(-?\d+)")
_FIELD = re.compile(r"([^=!]+?)\s*(==|=|!=)\s*(.*)")

_Requirement = Callable[[Mapping[str, str]], bool]


def _split_terms(text: str) -> list[str]:
    """Split on the commas that are not inside a set's parentheses."""
    terms, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(text[start:index].strip())
            start = index + 1
    terms.append(text[start:].strip())
    return [term for term in terms if term] if text.strip() else []


def _label_requirement(term: str) -> _Requirement:
    if match := _SET.fullmatch(term):
        key, operator, listed = match.groups()
        values = frozenset(value.strip() for value in listed.split(","))
        if operator == "in":
            return lambda labels: key in labels and labels[key] in values
        return lambda labels: labels.get(key) not in values
    if match := _EQUALITY.fullmatch(term):
        key, operator, value = match.groups()
        if operator == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _ORDER.fullmatch(term):
        key, operator, bound = match.group(1), match.group(2), int(match.group(3))
        return lambda labels: _compare(labels.get(key), operator, bound)
    if match := _EXISTS.fullmatch(term):
        negated, key = match.group(1) == "!", match.group(2)
        return lambda labels: (key in labels) != negated
    raise bad_request(f"unable to parse requirement: {term!r}")


def _compare(value: str | None, operator: str, bound: int) -> bool:
    try:
        number = int(value) if value is not None else None
    except ValueError:
        return False
    if number is None:
        return False
    return number > bound if operator == ">" else number < bound


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if isinstance(node, bool):
        return "true" if node else "false"
    return "" if node is None else str(node)


@dataclass(frozen=True, slots=True)
class Selector:
    """A namespace (None: all), label selector and field selector, ANDed."""

    namespace: str | None
    labels: tuple[_Requirement, ...] = ()
    fields: tuple[tuple[str, bool, str], ...] = ()
    """(field path, equal?, value) terms."""

    @classmethod
    def parse(
        cls, namespace: str | None, label_selector: str, field_selector: str, known: tuple[str, ...]
    ) -> Selector:
        labels = tuple(_label_requirement(term) for term in _split_terms(label_selector))
        fields = []
        for term in _split_terms(field_selector):
            match = _FIELD.fullmatch(term)
            if match is None:
                raise bad_request(
                    f"invalid selector: '{field_selector}'; can't understand '{term}'"
                )
            field, operator, value = match.group(1).strip(), match.group(2), match.group(3).strip()
            if field not in ("metadata.name", "metadata.namespace", *known):
                raise bad_request(f"field label not supported: {field}")
            fields.append((field, operator != "!=", value))
        return cls(namespace, labels, tuple(fields))

    def matches(self, obj: Mapping[str, Any]) -> bool:
        metadata = obj.get("metadata") or {}
        if self.namespace is not None and metadata.get("namespace", "") != self.namespace:
            return False
        labels = metadata.get("labels") or {}
        if not all(requirement(labels) for requirement in self.labels):
            return False
        return all(
            (_field_value(obj, field) == value) == equal for field, equal, value in self.fields
        )
