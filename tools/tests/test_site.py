"""The site builds strictly, and the README stays a front page.

`mkdocs build --strict` fails on a broken link or anchor and on a page left out of the
navigation (`validation` in mkdocs.yml); it must not need the network.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README_MAX_LINES = 150


def _build(site: Path, config: Path = ROOT / "mkdocs.yml") -> subprocess.CompletedProcess[str]:
    # Not `-q`: MkDocs 1.6 then no longer counts warnings, and --strict passes anything.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    argv = [str(ROOT / ".venv" / "bin" / "mkdocs"), "build", "--strict", "-f", str(config)]
    return subprocess.run(
        [*argv, "-d", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    done = _build(tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "reference" / "plugins" / "index.html").is_file()
    # The benchmark plots come from bench/results through the hook, not from a copy.
    assert (tmp_path / "benchmarks" / "plots" / "lab" / "prefix-high-ttft.png").is_file()
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "fonts.googleapis.com" not in html


def test_the_readme_is_a_front_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= README_MAX_LINES
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).is_file(), f"README links to a missing page: {link}"


def test_an_orphan_page_and_a_broken_link_fail_the_build(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    (docs / "orphan.md").write_text("# Not in the nav\n", encoding="utf-8")
    with (docs / "troubleshooting.md").open("a", encoding="utf-8") as page:
        page.write("\n[gone](no-such-page.md)\n")
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    config = config.replace("docs_dir: docs", f"docs_dir: {docs}")
    config = config.replace("- tools/docsgen/", f"- {ROOT}/tools/docsgen/")
    (tmp_path / "mkdocs.yml").write_text(config, encoding="utf-8")
    done = _build(tmp_path / "site", tmp_path / "mkdocs.yml")
    assert done.returncode != 0
    assert "orphan.md" in done.stderr
    assert "no-such-page.md" in done.stderr


def test_every_make_target_is_on_the_commands_page() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = re.findall(r"^([a-z0-9-]+):.*## ", makefile, re.M)
    page = (ROOT / "docs" / "reference" / "commands.md").read_text(encoding="utf-8")
    assert targets
    assert [t for t in targets if f"`make {t}`" not in page] == []
