"""The fenced-block reader behind the example tests: languages, marks and nesting."""

from __future__ import annotations

from pathlib import Path

from tools.docsgen.snippets import snippets

PAGE = """# A page

```bash
echo runs
```

```bash title="needs a cluster"
kubectl get pods
```

````markdown
```bash title="needs a cluster"
only an example of the convention
```
````

```yaml title="adapters.yaml"
baseModels: []
```
"""


def test_blocks_carry_language_title_line_and_whether_they_run(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(PAGE, encoding="utf-8")
    found = [(s.language, s.title, s.line, s.runs) for s in snippets(page, tmp_path)]
    assert found == [
        ("bash", "", 3, True),
        ("bash", "needs a cluster", 7, False),
        # The block inside a longer fence is part of that block, not a block of its own.
        ("markdown", "", 11, True),
        ("yaml", "adapters.yaml", 17, True),
    ]
    assert next(snippets(page, tmp_path)).id == "page.md:3"
