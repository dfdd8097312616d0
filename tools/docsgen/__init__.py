"""The documentation site's generated reference pages (issue 16): `python -m tools.docsgen`.

Each page is rendered from the code it documents: the programs' flags from their argparse
parsers (`flags`), the EPP's plugin catalog from its registry table (`plugins`), the metrics from
the collectors the services register (`metrics`), the CRD fields from `charts/crds/` (`crds`)
and the differences from upstream from one data file whose entries name their tests
(`upstream`). `make docs-gen` writes them under `docs/`; `tools/tests/test_docsgen.py` fails
when a committed page differs from what the code renders now, naming that command.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from tools.docsgen import crds, flags, metrics, plugins, upstream

__all__ = ["DOCS", "REGENERATE", "pages", "stale_pages", "write_pages"]

DOCS = Path(__file__).resolve().parents[2] / "docs"
REGENERATE = "make docs-gen"


def pages() -> dict[str, Callable[[], str]]:
    """Page path under docs/ -> the function that renders it."""
    rendered: dict[str, Callable[[], str]] = {
        program.page: partial(flags.flags_page, program) for program in flags.PROGRAMS
    }
    rendered[plugins.PAGE] = plugins.plugins_page
    rendered[metrics.PAGE] = metrics.metrics_page
    rendered[crds.PAGE] = crds.crds_page
    rendered[upstream.PAGE] = upstream.upstream_page
    return rendered


def stale_pages(docs: Path = DOCS) -> list[str]:
    """The generated pages whose committed text differs from what the code renders now."""
    return [
        page
        for page, render in pages().items()
        if not (docs / page).is_file() or (docs / page).read_text(encoding="utf-8") != render()
    ]


def write_pages(docs: Path = DOCS) -> list[str]:
    """Writes every page; returns those whose text changed."""
    changed = []
    for page, render in pages().items():
        path = docs / page
        text = render()
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(page)
    return changed
