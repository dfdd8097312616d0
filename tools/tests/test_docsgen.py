"""The generated reference pages are what the code renders now, and say what a user would check.

A failure here means the code changed (a flag, plugin, parameter, metric or CRD field) without
`make docs-gen`: run it and commit the pages it writes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from igw.epp.config import builtin_registry
from tools.docsgen import DOCS, REGENERATE, crds, metrics, pages, plugins, stale_pages, upstream
from tools.docsgen.upstream import upstream_page


def test_the_generated_pages_are_fresh() -> None:
    stale = stale_pages()
    assert not stale, f"stale generated docs: {', '.join(stale)}; run `{REGENERATE}` and commit"


def test_a_stale_page_is_reported(tmp_path: Path) -> None:
    for page, render in pages().items():
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / page).write_text(render(), encoding="utf-8")
    (tmp_path / plugins.PAGE).write_text("# old\n", encoding="utf-8")
    assert stale_pages(tmp_path) == [plugins.PAGE]


def test_every_registered_plugin_type_has_a_section_with_its_parameters() -> None:
    text = (DOCS / plugins.PAGE).read_text(encoding="utf-8")
    for plugin in builtin_registry(entry_points=False):
        assert f"### `{plugin.type_name}`" in text
    # A parameter with its camelCase name and default, as a configuration spells them.
    assert "| `maxConcurrency` | int | `100` |" in text


def test_flow_control_and_bbr_metrics_are_listed_with_labels() -> None:
    text = (DOCS / metrics.PAGE).read_text(encoding="utf-8")
    assert "| `inference_extension_flow_control_queue_size` | gauge | `fairness_id`, " in text
    assert "| `bbr_success_total` | counter |" in text
    assert "| `inference_pool_per_pod_queue_size` | gauge | `name`, `model_server_pod` |" in text


def test_the_crd_page_lists_nested_fields_with_limits() -> None:
    text = (DOCS / crds.PAGE).read_text(encoding="utf-8")
    assert "| `spec.targetPorts[].number` | integer | yes | >= 1; <= 65535 |" in text


def test_a_difference_naming_a_vanished_test_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "differences.yaml"
    data.write_text(
        "- {service: EPP, area: x, upstream: a, igw: b,\n"
        "   test: 'tests/test_architecture.py::test_no_such_test'}\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(upstream, "DATA", data)
    with pytest.raises(LookupError, match="test_no_such_test"):
        upstream_page()
