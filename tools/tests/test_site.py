"""The site builds strictly, and the README stays a front page.

`mkdocs build --strict` fails on a broken link or anchor and on a page left out of the
navigation (`validation` in mkdocs.yml); it must not need the network.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README_MAX_LINES = 150


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "mkdocs"), "build", "--strict", "-q", "-d", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
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
