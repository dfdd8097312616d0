"""The dependency rules of DESIGN §3.1, checked on the import graph built from the source.

Every `import` and `from ... import` in the workspace counts, including those under
`if TYPE_CHECKING:` and inside functions: a cycle that only type checkers see is still a cycle
in the design. The rules:

* `libs/common` never imports a service; the BBR and the EPP never import each other; no service
  imports the simulator, in `src/`, `testing/` helpers or tests; the simulator imports no
  gateway service.
* Inside the EPP, packages form a DAG in layers: the plugin framework at the bottom, then the
  plugin packages, then `config`, then the request path, then the server and CLI.
* Nothing in `src/` imports another package's private module (`pkg._private`) of ours.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TREES: Mapping[str, str] = {
    "libs/common": "common",
    "services/bbr": "bbr",
    "services/epp": "epp",
    "services/sim": "sim",
    "e2e": "e2e",
    "bench": "bench",
}
"""Workspace folder -> the owner its files are judged as."""

FORBIDDEN: Mapping[str, tuple[str, ...]] = {
    "common": ("igw.bbr", "igw.epp", "igw.sim", "igw.e2e", "bench"),
    "bbr": ("igw.epp", "igw.sim", "igw.e2e", "bench"),
    "epp": ("igw.bbr", "igw.sim", "igw.e2e", "bench"),
    "sim": ("igw.bbr", "igw.epp", "igw.e2e", "bench"),
    "e2e": ("bench",),
    "bench": (),
}
"""Owner -> module prefixes it must never import."""

EPP_LAYERS: Mapping[str, int] = {
    "endpoints": 0, "units": 0, "_generated": 0,
    "framework": 1,
    "datalayer": 2, "parsers": 2, "flowcontrol": 2, "scheduling": 2, "requestcontrol": 2,
    "config": 3,
    "requestpath": 4, "discovery": 4,
    "admin": 5, "workers": 5,
    "server": 6, "server_options": 6, "cli": 7,
    "testing": 8,
}  # fmt: skip
"""Each EPP package's layer: a package imports only from lower layers or its own."""


@dataclass(frozen=True, slots=True)
class Import:
    importer: str
    """The importing module's dotted name (tests: their path, dotted)."""
    imported: str
    path: Path
    line: int
    owner: str
    in_src: bool


def _module_name(path: Path) -> str:
    relative = path.relative_to(ROOT)
    parts = list(relative.with_suffix("").parts)
    if "src" in parts:
        parts = parts[parts.index("src") + 1 :]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _python_files() -> Iterator[tuple[Path, str]]:
    for folder, owner in TREES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "_generated" in path.parts or ".venv" in path.parts:
                continue
            yield path, owner


def _imports() -> list[Import]:
    modules = {_module_name(path) for path, _ in _python_files()}
    found: list[Import] = []
    for path, owner in _python_files():
        importer = _module_name(path)
        in_src = "src" in path.relative_to(ROOT).parts
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = _resolve(node, importer, path.name == "__init__.py")
                # `from pkg import sub` names the submodule when there is one.
                subs = [f"{module}.{alias.name}" for alias in node.names]
                names = [s for s in subs if s in modules] or [module]
            else:
                continue
            found.extend(Import(importer, name, path, node.lineno, owner, in_src) for name in names)
    return found


IMPORTS = _imports()


def _where(i: Import) -> str:
    return f"{i.path.relative_to(ROOT)}:{i.line} imports {i.imported}"


def test_the_graph_covers_every_tree() -> None:
    owners = {i.owner for i in IMPORTS}
    assert owners == set(TREES.values())
    assert any(i.imported.startswith("igw.epp.framework") for i in IMPORTS)


def test_no_tree_imports_what_it_must_not() -> None:
    broken = [
        _where(i)
        for i in IMPORTS
        for prefix in FORBIDDEN[i.owner]
        if i.imported == prefix or i.imported.startswith(prefix + ".")
    ]
    assert broken == []


def _epp_package(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] != ["igw", "epp"] or len(parts) < 3:
        return None
    return parts[2]


def _epp_edges() -> dict[str, dict[str, Import]]:
    edges: dict[str, dict[str, Import]] = {}
    for i in IMPORTS:
        if not i.in_src:
            continue
        source, target = _epp_package(i.importer), _epp_package(i.imported)
        if source is None or target is None or source == target:
            continue
        edges.setdefault(source, {}).setdefault(target, i)
    return edges


def _cycle(edges: Mapping[str, Mapping[str, Import]]) -> list[str]:
    """One cycle of the package graph as a path, or [] when it is a DAG."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = "open"
        for nxt in sorted(edges.get(node, {})):
            if state.get(nxt) == "open":
                return [*path, node, nxt]
            if nxt not in state and (found := visit(nxt, [*path, node])):
                return found
        state[node] = "done"
        return []

    for node in sorted(edges):
        if node not in state and (found := visit(node, [])):
            return found
    return []


def test_the_epp_packages_form_a_dag() -> None:
    edges = _epp_edges()
    cycle = _cycle(edges)
    start = cycle.index(cycle[-1]) if cycle else 0
    loop = cycle[start:]
    where = [_where(edges[a][b]) for a, b in itertools.pairwise(loop)]
    assert loop == [], "\n".join(where)


def test_every_epp_package_has_a_layer() -> None:
    packages = {p for i in IMPORTS if (p := _epp_package(i.importer)) is not None}
    assert sorted(packages - set(EPP_LAYERS)) == []


def test_epp_packages_import_only_lower_layers() -> None:
    upward = [
        f"{source} (layer {EPP_LAYERS[source]}) -> {target} (layer {EPP_LAYERS[target]}): "
        + _where(i)
        for source, targets in _epp_edges().items()
        for target, i in targets.items()
        if EPP_LAYERS.get(target, 99) > EPP_LAYERS.get(source, -1)
    ]
    assert upward == []


def test_nothing_in_src_imports_another_packages_private_module() -> None:
    broken = []
    for i in IMPORTS:
        parts = i.imported.split(".")
        private = [k for k, part in enumerate(parts) if part.startswith("_")]
        if not i.in_src or not private or parts[0] not in ("igw", "bench"):
            continue
        parent = ".".join(parts[: private[0]])
        if not (i.importer == parent or i.importer.startswith(parent + ".")):
            broken.append(_where(i))
    assert broken == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("a.b", [], id="acyclic"),
        pytest.param("a.b.c.a", ["a", "b", "c", "a"], id="cycle"),
    ],
)
def test_the_cycle_finder_finds_cycles(source: str, expected: list[str]) -> None:
    """The check above must be able to fail: a hand-made graph with and without a loop."""
    hops = source.split(".")
    dummy = IMPORTS[0]
    edges: dict[str, dict[str, Import]] = {}
    for a, b in itertools.pairwise(hops):
        edges.setdefault(a, {})[b] = dummy
    assert _cycle(edges) == expected
