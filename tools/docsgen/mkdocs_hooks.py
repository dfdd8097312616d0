"""MkDocs hooks (`hooks:` in mkdocs.yml): the benchmark plots join the site without a copy.

The plots live where the benchmarks write them (`bench/results/`); `on_files` adds each PNG as
`benchmarks/plots/<path under bench/results>`, so a page links `plots/lab/prefix-high-ttft.png`
and MkDocs' strict link check sees the file. A new benchmark run needs no docs change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
SITE_PREFIX = "benchmarks/plots"


def on_files(files: Files, config: Any, **_: Any) -> Files:
    for plot in sorted(RESULTS.rglob("*.png")):
        relative = plot.relative_to(RESULTS)
        if relative.parts[0] in ("tmp", "lab-quick"):
            continue  # scratch output, not committed
        uri = f"{SITE_PREFIX}/{relative.as_posix()}"
        files.append(File.generated(config, uri, abs_src_path=str(plot)))
    return files
