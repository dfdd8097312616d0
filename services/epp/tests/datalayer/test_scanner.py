"""The line scanner: selector specs, the text format's tricky cases, and agreement with a parser."""

from __future__ import annotations

import collections
import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from igw.epp.datalayer.scanner import (
    Sample,
    ScanError,
    ScanHints,
    Scanner,
    Selector,
    SelectorError,
)
from igw.epp.testing import LoraInfo, VllmState, vllm_page


def scan_one(spec: str, page: str | bytes) -> list[Sample]:
    selector = Selector.parse(spec)
    body = page.encode() if isinstance(page, str) else page
    return Scanner([selector]).scan(body)[selector]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param("vllm:num_requests_waiting", Selector("vllm:num_requests_waiting"), id="name"),
        pytest.param(
            "m{request_type=waiting}", Selector("m", (("request_type", "waiting", True),)),
            id="bare-value",
        ),
        pytest.param(
            'm{ a="x" , b!="y\\"z", }', Selector("m", (("a", "x", True), ("b", 'y"z', False))),
            id="quoted-spaces-not-equal-escape-trailing-comma",
        ),
        pytest.param("m{}", Selector("m"), id="empty-braces"),
    ],
)  # fmt: skip
def test_selector_parses_upstream_spec_syntax(spec: str, expected: Selector) -> None:
    assert Selector.parse(spec) == expected


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param("", id="empty"),
        pytest.param("9lives", id="bad-name"),
        pytest.param("m{a=~'x.*'}", id="regex-matcher"),
        pytest.param("m{a=}", id="missing-value"),
        pytest.param('m{a="x" b="y"}', id="missing-comma"),
        pytest.param("m{a=x", id="unclosed"),
        pytest.param("m[5m]", id="range-selector"),
    ],
)
def test_selector_rejects_unsupported_specs_naming_them(spec: str) -> None:
    with pytest.raises(SelectorError, match="metric spec"):
        Selector.parse(spec)


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        pytest.param("m 1\n", [({}, 1.0, None)], id="no-labels"),
        pytest.param("m 1", [({}, 1.0, None)], id="no-trailing-newline"),
        pytest.param('# HELP m x\r\n# TYPE m gauge\r\nm{a="b"} 2\r\n', [({"a": "b"}, 2.0, None)],
                     id="crlf"),
        pytest.param("m{} 3 1700000000123\n", [({}, 3.0, 1700000000123)], id="timestamp"),
        pytest.param("m -1.5e-3\n", [({}, -0.0015, None)], id="exponent"),
        pytest.param("m +Inf\nm -Inf\n", [({}, math.inf, None), ({}, -math.inf, None)], id="inf"),
        pytest.param('m{a="x\\"}y",b="c\\\\d\\ne"} 1\n',
                     [({"a": 'x"}y', "b": "c\\d\ne"}, 1.0, None)], id="escapes-and-brace-in-value"),
        pytest.param('m{a="1",} 1\n', [({"a": "1"}, 1.0, None)], id="trailing-comma"),
        pytest.param("m\t7\n", [({}, 7.0, None)], id="tab-separated"),
        pytest.param('m_total 1\nm_bucket{le="1"} 2\nmm 3\n', [], id="longer-names-ignored"),
        pytest.param("# HELP m help\n# TYPE m gauge\n", [], id="comments-only"),
        pytest.param("other 1\nm 2\nm 3\n", [({}, 2.0, None), ({}, 3.0, None)],
                     id="group-after-other-family"),
    ],
)  # fmt: skip
def test_scan_reads_the_wanted_family(
    page: str, expected: list[tuple[dict[str, str], float, int | None]]
) -> None:
    samples = scan_one("m", page)
    assert [(dict(s.labels), s.value, s.timestamp_ms) for s in samples] == expected


def test_nan_value_is_read_as_nan() -> None:
    (sample,) = scan_one("m", "m NaN\n")
    assert math.isnan(sample.value)


@pytest.mark.parametrize(
    "page",
    [
        pytest.param("m abc\n", id="word-value"),
        pytest.param("m 1_000\n", id="underscore-value"),
        pytest.param('m\n m 1\nm{a="x"}\n', id="no-value"),
        pytest.param("m 1 2 3\n", id="extra-field"),
        pytest.param("m 1 1.5\n", id="float-timestamp"),
        pytest.param('m{a="x" 1\n', id="unterminated-labels"),
        pytest.param(b'm{a="\xff"} 1\n', id="not-utf8"),
    ],
)  # fmt: skip
def test_malformed_wanted_line_is_a_scan_error(page: str | bytes) -> None:
    with pytest.raises(ScanError):
        scan_one("m", page)


def test_malformed_labels_are_reported_when_read() -> None:
    (sample,) = scan_one("m", "m{a=x} 1\n")  # labels are parsed lazily
    with pytest.raises(ScanError, match="malformed labels"):
        _ = sample.labels


def test_garbage_elsewhere_on_the_page_is_not_read() -> None:
    assert [s.value for s in scan_one("m", "\x00garbage {{{\nm 4\n<html>")] == [4.0]


def test_label_matchers_select_series_within_one_family() -> None:
    page = 'r{type="waiting"} 3\nr{type="scheduled"} 5\nr{kind="x"} 9\n'
    waiting, scheduled, not_waiting = (
        Selector.parse(spec)
        for spec in ("r{type=waiting}", 'r{type="scheduled"}', "r{type!=waiting}")
    )  # fmt: skip
    found = Scanner([waiting, scheduled, not_waiting]).scan(page.encode())
    assert [s.value for s in found[waiting]] == [3.0]
    assert [s.value for s in found[scheduled]] == [5.0]
    assert [s.value for s in found[not_waiting]] == [5.0, 9.0]  # a missing label is ""


def test_scan_agrees_with_prometheus_client_on_the_realistic_page() -> None:
    page = vllm_page(
        VllmState(waiting=7, running=3, kv_usage=0.25,
                  lora=(LoraInfo(running=("a", "b"), value=10.0), LoraInfo(waiting=("c",))))
    )  # fmt: skip
    reference: dict[str, list[tuple[dict[str, str], float]]] = collections.defaultdict(list)
    for family in text_string_to_metric_families(page.decode()):
        for sample in family.samples:
            reference[sample.name].append((sample.labels, sample.value))
    assert len(reference) > 60  # the page is realistic: many families
    for name, expected in reference.items():
        samples = scan_one(name, page)
        assert [(dict(s.labels), s.value) for s in samples] == expected, name


def _found(scanner: Scanner, page: bytes, hints: ScanHints | None) -> list[list[tuple[float, str]]]:
    found = scanner.scan(page, hints)
    return [[(s.value, repr(s)) for s in found[sel]] for sel in scanner.selectors]


FILLER = "".join(f'f{{i="{i}"}} {i}\n' for i in range(400))  # ~6 KB of another family


@pytest.mark.parametrize(
    "pages",
    [
        pytest.param([vllm_page(VllmState(waiting=w, running=w * 7, kv_usage=w / 10,
                                          lora=(LoraInfo(running=("a",) * w),)))
                      for w in (1, 9, 12345, 0, 3)], id="same-layout-values-change-length"),
        pytest.param(["x 1\n" + FILLER + "m 1\n", "x 1\nm 2\n" + FILLER, FILLER + "m 3\n" + FILLER,
                      "m 4\n" + FILLER], id="family-moves-far-and-to-the-top"),
        pytest.param([FILLER + "m 1\n", FILLER + "n 1\n", FILLER + "m 2\n"],
                     id="family-disappears-and-returns"),
        pytest.param([FILLER * 2 + "m 1\n", "a 1\n" + "".join(f'm{{i="{i}"}} {i}\n'
                                                            for i in range(900))],
                     id="hint-lands-mid-group"),
        pytest.param([FILLER + "m 1\n", FILLER + "mm 1\nm_total 2\nm 3\n"],
                     id="longer-names-near-the-hint"),
        pytest.param([FILLER + "m 1\n" + FILLER, FILLER + "m 1\n" + FILLER,
                      FILLER + "m 2\n" + FILLER, 'm{a="1"} 2\nm{a="2"} 2\n',
                      'm{a="1"} 2\nm{a="2"} 2\n', 'm{a="1"} 2\nm{a="2"} 3\n'],
                     id="same-place-value-changes-in-place"),
    ],
)  # fmt: skip
def test_hinted_scans_find_what_full_scans_find(pages: list[bytes | str]) -> None:
    """Hints only make a scan cheaper: page after page, results equal a scan without them."""
    scanner = Scanner(Selector.parse(spec) for spec in (
        "m", "vllm:num_requests_waiting", "vllm:num_requests_running",
        "vllm:kv_cache_usage_perc", "vllm:lora_requests_info", "vllm:cache_config_info",
    ))  # fmt: skip
    hints = scanner.new_hints()
    seen = 0
    for page in pages:
        body = page.encode() if isinstance(page, str) else page
        assert _found(scanner, body, hints) == _found(scanner, body, None)
        seen += sum(map(len, _found(scanner, body, None)))
    assert seen >= len(pages) - 1  # the pages do hold the families looked for
