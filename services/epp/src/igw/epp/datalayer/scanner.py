"""A Prometheus text-format scanner that reads only the metric families it was asked for.

A vLLM `/metrics` page is tens of kilobytes, mostly histogram buckets the EPP never reads, and it
is fetched from every endpoint every 50 ms. So instead of parsing the page, `Scanner.scan` looks up
each wanted family with `bytes.find(b"\\n" + name)`: in the text exposition format a sample line
starts with its metric name, and a raw newline never occurs inside a label value or HELP text (both
escape it as `\\n`), so a hit that follows a newline and is followed by `{`, a space or a tab is a
sample line of that family, and comments (`# HELP name ...`) never match. Only the lines found
are decoded and parsed.

Hints: a page is tens of kilobytes and `bytes.find` crawls through it at about 1 byte per ns
(metric names share prefixes, defeating its skip table), while the same server serves the same
layout every poll, with only the numbers changing. So a caller may pass a `hints` list (one per
family, kept per endpoint): each family is first looked for in a window (`_BEHIND`, `_AHEAD`)
around where it was found last time, and accepted there only at the start of its group (the line
before is not of the same family); otherwise, or when it was absent last time, the whole page is
searched.
Given the format's rule that a family's lines form one group, both searches find the same lines.
The hints also keep each family's lines as last seen and the samples parsed from them: a group
whose bytes did not change (info series such as the cache config or LoRA state every poll; gauges
while the load is steady) is compared, not parsed again.

Selectors are parsed once (`Selector.parse`, the PromQL vector-selector subset upstream's
`core-metrics-extractor` specs use: `name`, `name{label="value"}`, `name{label=value}`, with `=`
and `!=` matchers). A malformed wanted line raises `ScanError`; lines of other families are never
looked at, so garbage elsewhere on the page is not noticed (by design).
"""

from __future__ import annotations

import functools
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["Sample", "ScanError", "ScanHints", "Scanner", "Selector", "SelectorError"]

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_SAMPLE_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\]|\\.)*)"[ \t]*(,?)')
_SELECTOR_PAIR = re.compile(
    r'([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*(=~|!~|!=|=)[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^,}\s"]+))[ \t]*(,?)'
)
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
_DELIMITERS = (b"{", b" ", b"\t")
_BEHIND, _AHEAD = 256, 2048
"""The window around its last position a family is looked for first (bytes; see Hints): numbers
grow more often than they shrink, and the search runs forwards from the window's start."""


class SelectorError(ValueError):
    """A metric spec string is not a supported vector selector; the message quotes it."""


class ScanError(ValueError):
    """A wanted sample line is malformed; the message quotes the line."""


@dataclass(frozen=True, slots=True)
class Selector:
    """A family name and label matchers: `(label, value, equal)` triples, all must hold."""

    name: str
    matchers: tuple[tuple[str, str, bool], ...] = ()
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Selectors key the scan results, looked up many times per scrape.
        object.__setattr__(self, "_hash", hash((self.name, self.matchers)))

    def __hash__(self) -> int:
        return self._hash

    @classmethod
    def parse(cls, spec: str) -> Selector:
        """Parse `name` or `name{a="x", b=y, c!="z"}`; raises `SelectorError`."""
        text = spec.strip()
        match = _NAME.match(text)
        if match is None:
            raise SelectorError(f"metric spec {spec!r}: must start with a metric name")
        rest = text[match.end() :].strip()
        if not rest:
            return cls(match.group())
        if not (rest.startswith("{") and rest.endswith("}")):
            raise SelectorError(f"metric spec {spec!r}: expected `{{label=value, ...}}`")
        try:
            return cls(match.group(), _selector_labels(rest[1:-1]))
        except SelectorError as exc:
            raise SelectorError(f"metric spec {spec!r}: {exc}") from None

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all((labels.get(key, "") == value) is equal for key, value, equal in self.matchers)

    def __str__(self) -> str:
        if not self.matchers:
            return self.name
        inner = ",".join(f'{k}{"=" if eq else "!="}"{v}"' for k, v, eq in self.matchers)
        return f"{self.name}{{{inner}}}"


class Sample:
    """One sample line: value, optional timestamp (ms), and labels parsed on first access.

    Most samples the EPP reads are plain gauges whose labels nobody looks at, so the label text
    is kept raw until `labels` is read; a malformed label block raises `ScanError` then.
    """

    __slots__ = ("_label_text", "_labels", "timestamp_ms", "value")

    def __init__(
        self,
        value: float,
        timestamp_ms: int | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        label_text: str = "",
    ) -> None:
        self.value = value
        self.timestamp_ms = timestamp_ms
        self._labels = labels
        self._label_text = label_text

    @property
    def labels(self) -> Mapping[str, str]:
        if self._labels is None:
            self._labels = _sample_labels(self._label_text)
        return self._labels

    def __repr__(self) -> str:
        return f"Sample({self.value!r}, {self.timestamp_ms!r}, labels={dict(self.labels)!r})"


class ScanHints:
    """One page source's memory between scans (module docstring, Hints): per family, where its
    group started, its bytes and the samples parsed from them. Made by `Scanner.new_hints`."""

    __slots__ = ("blocks", "positions", "samples")

    def __init__(self, families: int) -> None:
        self.positions = [-1] * families
        self.blocks = [b""] * families
        self.samples: list[list[Sample]] = [[] for _ in range(families)]


class Scanner:
    """Finds the samples of a fixed set of selectors in a page; build once, scan every poll."""

    def __init__(self, selectors: Iterable[Selector]) -> None:
        self.selectors = tuple(dict.fromkeys(selectors))
        by_name: dict[str, list[Selector]] = {}
        for selector in self.selectors:
            by_name.setdefault(selector.name, []).append(selector)
        self._families = tuple(
            (name.encode(), b"\n" + name.encode(), tuple(group)) for name, group in by_name.items()
        )

    def new_hints(self) -> ScanHints:
        """Hints for `scan`, to keep per page source (endpoint)."""
        return ScanHints(len(self._families))

    def scan(self, body: bytes, hints: ScanHints | None = None) -> dict[Selector, list[Sample]]:
        """Matching samples per selector, in page order; raises `ScanError` on a bad line.

        `hints` (from `new_hints`) is read and updated with where each family was found.
        """
        found: dict[Selector, list[Sample]] = {}
        for index, (raw, needle, group) in enumerate(self._families):
            if hints is None:
                pos = _group_start(body, raw, needle)
                samples = _parse_group(body[pos : _group_end(body, raw, pos)], len(raw))
            else:
                pos = hints.positions[index] = _hinted_start(
                    body, raw, needle, hints.positions[index]
                )
                block = body[pos : _group_end(body, raw, pos)]
                if block == hints.blocks[index]:
                    samples = hints.samples[index]
                else:
                    samples = hints.samples[index] = _parse_group(block, len(raw))
                    hints.blocks[index] = block
            for selector in group:
                found[selector] = (
                    list(samples)
                    if not selector.matchers
                    else [s for s in samples if selector.matches(s.labels)]
                )
        return found


def _group_start(body: bytes, raw: bytes, needle: bytes) -> int:
    """Where the family's first sample line starts, or -1.

    The first hit of `needle` (`\\n` + name) followed by `{`, a space or a tab.
    """
    size = len(raw)
    pos = 0 if body.startswith(raw) else _next_hit(body, needle, 0)
    while pos >= 0 and body[pos + size : pos + size + 1] not in _DELIMITERS:
        pos = _next_hit(body, needle, pos)
    return pos


def _hinted_start(body: bytes, raw: bytes, needle: bytes, hint: int) -> int:
    """`_group_start`, looking at `hint` itself, then near it, first (module docstring, Hints)."""
    if hint > 0:
        size = len(raw)
        if body.startswith(needle, hint - 1) and body[hint + size : hint + size + 1] in _DELIMITERS:
            pos = hint - 1  # the same place as last time: the usual case
        else:
            end = hint + _AHEAD
            pos = body.find(needle, max(hint - _BEHIND, 0), end)
            while pos >= 0 and body[pos + 1 + size : pos + 2 + size] not in _DELIMITERS:
                pos = body.find(needle, pos + 1, end)
        if pos >= 0:
            previous = body.rfind(b"\n", 0, pos) + 1
            if body[previous + size : previous + size + 1] not in _DELIMITERS or (
                not body.startswith(raw, previous)
            ):
                return pos + 1
    return _group_start(body, raw, needle)


def _group_end(body: bytes, raw: bytes, pos: int) -> int:
    """Where the group of sample lines starting at `pos` ends (its last newline; `pos` -1: -1).

    The format requires a family's lines to form one group, so the following lines are read
    while they belong to the family, and the rest of the page is never searched again.
    """
    if pos < 0:
        return pos
    size = len(raw)
    while True:
        end = body.find(b"\n", pos)
        if end < 0:
            return len(body)
        pos = end + 1
        if not body.startswith(raw, pos) or body[pos + size : pos + size + 1] not in _DELIMITERS:
            return end


def _parse_group(block: bytes, name_len: int) -> list[Sample]:
    """The samples of one family's group of lines (`_group_end`), each line decoded and parsed."""
    if not block:
        return []
    try:
        text = block.decode()
    except UnicodeDecodeError as exc:
        name = block[:name_len].decode(errors="replace")
        raise ScanError(f"sample line of {name!r} is not UTF-8") from exc
    return [parse_sample(line.rstrip("\r"), name_len) for line in text.split("\n")]


def _next_hit(body: bytes, needle: bytes, pos: int) -> int:
    found = body.find(needle, pos)
    return found + 1 if found >= 0 else -1


def parse_sample(line: str, name_len: int) -> Sample:
    """Parse `name{labels} value [timestamp]` whose name is `line[:name_len]`."""
    label_text = ""
    rest = line[name_len:]
    if rest.startswith("{"):
        # Neither a value nor a timestamp holds `}`, so the last one closes the labels.
        close = rest.rfind("}")
        if close < 0:
            raise ScanError(f"unterminated label set: {line!r}")
        label_text, rest = rest[1:close], rest[close + 1 :]
    fields = rest.split()
    if len(fields) not in (1, 2):
        raise ScanError(f"expected `value [timestamp]` after the labels: {line!r}")
    value = _parse_value(fields[0], line)
    timestamp = None
    if len(fields) == 2:
        try:
            timestamp = int(fields[1])
        except ValueError:
            raise ScanError(f"bad timestamp {fields[1]!r}: {line!r}") from None
    return Sample(value, timestamp, labels=None if label_text else {}, label_text=label_text)


def _parse_value(text: str, line: str) -> float:
    # float() also takes "1_000", which Go's ParseFloat (the format's definition) does not.
    if "_" in text:
        raise ScanError(f"bad value {text!r}: {line!r}")
    try:
        return float(text)
    except ValueError:
        raise ScanError(f"bad value {text!r}: {line!r}") from None


@functools.lru_cache(maxsize=1024)
def _sample_labels(text: str) -> Mapping[str, str]:
    """`a="x",b="y"` (the text between the braces of a sample line) as a read-only mapping.

    Memoised: info series (cache config, LoRA state) repeat the same text scrape after scrape
    and endpoint after endpoint.
    """
    labels: dict[str, str] = {}
    pos, size = 0, len(text)
    while True:
        pos = _skip_spaces(text, pos)
        if pos == size:
            return types.MappingProxyType(labels)
        match = _SAMPLE_PAIR.match(text, pos)
        if match is None:
            raise ScanError(f"malformed labels at column {pos + 1}: {{{text}}}")
        name, value, comma = match.groups()
        labels[name] = _unescape(value) if "\\" in value else value
        pos = match.end()
        if not comma and _skip_spaces(text, pos) != size:
            raise ScanError(f"expected `,` at column {pos + 1}: {{{text}}}")


def _selector_labels(text: str) -> tuple[tuple[str, str, bool], ...]:
    """Matchers from a selector's brace text: `a="x", b=y, c!="z"`."""
    matchers: list[tuple[str, str, bool]] = []
    pos, size = 0, len(text)
    while True:
        pos = _skip_spaces(text, pos)
        if pos == size:
            return tuple(matchers)
        match = _SELECTOR_PAIR.match(text, pos)
        if match is None:
            raise SelectorError(f"malformed matcher at column {pos + 1}")
        name, operator, quoted, bare, comma = match.groups()
        if operator not in ("=", "!="):
            raise SelectorError(f"matcher {operator!r}: only = and != are supported")
        value = bare if quoted is None else _unescape(quoted)
        matchers.append((name, value, operator == "="))
        pos = match.end()
        if not comma and _skip_spaces(text, pos) != size:
            raise SelectorError(f"expected `,` at column {pos + 1}")


def _unescape(value: str) -> str:
    # The text format keeps an unknown escape as is (backslash and character).
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group()), value)


def _skip_spaces(text: str, pos: int) -> int:
    while text.startswith((" ", "\t"), pos):
        pos += 1
    return pos
