"""The EPP's plugin catalog, read from its registry table (`igw.epp.config.builtin`).

For each registered type: its kinds (from the kind protocols it implements), what it does (the
first paragraph of its module's docstring) and its parameters, from the `Params` struct its
`from_config` decodes: the name as a configuration spells it, the type, the default, and the
field's docstring when it has one. Out-of-tree plugins (entry points) are left out: the page
documents what igw ships.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import re
import sys
import textwrap
import types
import typing
from typing import Any

import msgspec

from igw.epp.config.builtin import UNSUPPORTED_TYPES, builtin_registry
from igw.epp.framework import Plugin, plugin_kinds
from tools.docsgen._markdown import GENERATED_NOTE, code, one_line, table

__all__ = ["PAGE", "params_struct", "plugins_page"]

PAGE = "reference/plugins.md"

_DECODE = re.compile(r"decode_params\(\s*params\s*,\s*(\w+)\s*\)")


def params_struct(plugin: type[Plugin]) -> type[msgspec.Struct]:
    """The struct `from_config` decodes `parameters` into. Raises `LookupError` for a plugin whose
    `from_config` does not call `decode_params(params, Struct)` (the one construction path)."""
    owner = next(c for c in plugin.__mro__ if "from_config" in vars(c))
    source = inspect.getsource(vars(owner)["from_config"].__func__)
    found = _DECODE.search(source)
    if found is None:
        raise LookupError(f"{plugin.type_name}: from_config does not call decode_params")
    struct = getattr(sys.modules[owner.__module__], found.group(1))
    if not (isinstance(struct, type) and issubclass(struct, msgspec.Struct)):
        raise TypeError(f"{plugin.type_name}: {found.group(1)} is not a msgspec struct")
    return struct


def _type_text(annotation: Any) -> str:
    if annotation is msgspec.UnsetType or annotation is type(None):
        return ""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " or ".join(code(repr(a).replace("'", '"')) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        parts = [_type_text(a) for a in typing.get_args(annotation)]
        return " or ".join(p for p in parts if p)
    args_in = typing.get_args(annotation)
    if origin is tuple and args_in[1:] == (Ellipsis,):
        return f"list[{_type_text(args_in[0])}]"
    if origin is not None:
        args = ", ".join(_type_text(a) for a in args_in)
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return getattr(annotation, "__name__", str(annotation))


def _field_docs(struct: type[msgspec.Struct]) -> dict[str, str]:
    """Attribute docstrings (a string right after a field) by Python field name."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(struct)))
    docs: dict[str, str] = {}
    body = tree.body[0].body if isinstance(tree.body[0], ast.ClassDef) else []
    for field, after in itertools.pairwise(body):
        if (
            isinstance(field, ast.AnnAssign)
            and isinstance(field.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[field.target.id] = one_line(after.value.value)
    return docs


def _default_text(field: msgspec.structs.FieldInfo) -> str:
    if field.default is not msgspec.NODEFAULT:
        value = field.default
        if value is msgspec.UNSET or value is None:
            return "unset"
        if isinstance(value, (msgspec.Struct, tuple, list, dict)):
            return code(msgspec.json.encode(value).decode())
        if isinstance(value, str):
            return code(value) if value else code('""')
        return code(str(value).lower() if isinstance(value, bool) else repr(value))
    if field.default_factory is not msgspec.NODEFAULT:
        return code(msgspec.json.encode(field.default_factory()).decode())
    return "required"


def _params_table(struct: type[msgspec.Struct]) -> tuple[str, list[type[msgspec.Struct]]]:
    """The table, and the nested structs its fields name (each gets a table of its own)."""
    fields = msgspec.structs.fields(struct)
    if not fields:
        return "No parameters.\n", []
    docs = _field_docs(struct)
    nested = [
        t
        for f in fields
        for t in (f.type, *typing.get_args(f.type))
        if isinstance(t, type) and issubclass(t, msgspec.Struct)
    ]
    rows = [
        (code(f.encode_name), _type_text(f.type), _default_text(f), docs.get(f.name, ""))
        for f in fields
    ]
    return table(("Parameter", "Type", "Default", "Notes"), rows), nested


def _summary(plugin: type[Plugin]) -> str:
    doc = inspect.getdoc(sys.modules[plugin.__module__]) or inspect.getdoc(plugin) or ""
    first = one_line(doc.split("\n\n")[0])
    first = re.sub(r"^(The )?`[\w-]+`(\s*\([^)]*\))?:\s*", "", first)
    first = re.sub(r"\s*\(§[\d.]+\)", "", first)  # sections of our notes on upstream
    return first[:1].upper() + first[1:]


def _kinds(plugin: type[Plugin]) -> str:
    return ", ".join(sorted(plugin_kinds(plugin)))


def _plugin_section(plugin: type[Plugin]) -> str:
    kinds = _kinds(plugin)
    struct = params_struct(plugin)
    params, nested = _params_table(struct)
    parts = [f"### `{plugin.type_name}`", f"Kinds: {kinds}.", _summary(plugin), params]
    seen: set[type[msgspec.Struct]] = set()
    while nested:
        inner = nested.pop(0)
        if inner in seen:
            continue
        seen.add(inner)
        inner_table, more = _params_table(inner)
        parts += [f"`{inner.__name__}`:", inner_table]
        nested += more
    return "\n\n".join(p.strip() for p in parts if p.strip())


def plugins_page() -> str:
    registry = builtin_registry(entry_points=False)
    plugins = sorted(registry, key=lambda p: p.type_name)
    overview = table(
        ("Type", "Kinds", "What it does"),
        [(f"[`{p.type_name}`](#{p.type_name})", _kinds(p), _summary(p)) for p in plugins],
    )
    refused = table(
        ("Upstream type", "Why igw refuses it"),
        [(code(name), why) for name, why in sorted(UNSUPPORTED_TYPES.items())],
    )
    parts = [
        GENERATED_NOTE,
        "# Plugin catalog",
        (
            "Every plugin type the EPP's registry holds, as an `EndpointPickerConfig` names it in "
            "`plugins[].type`, with its parameters (`plugins[].parameters`, strictly decoded: an "
            "unknown field is an error). How profiles combine them is in "
            "[Scheduling](../concepts/scheduling.md)."
        ),
        overview,
        "## Plugins",
        *(_plugin_section(p) for p in plugins),
        "## Refused upstream types",
        "A configuration naming one of these fails to load, with the reason:",
        refused,
    ]
    return "\n\n".join(p.rstrip("\n") for p in parts) + "\n"
