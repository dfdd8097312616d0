"""The CRD field reference, read from our CRD schemas in `charts/crds/`.

One table per kind and version: each field's path (`spec.targetPorts[].number`), type, whether
it is required, its default and limits (enum, minimum/maximum, lengths, item counts) and its
description, walking `openAPIV3Schema` below `spec` and `status`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from tools.docsgen._markdown import GENERATED_NOTE, code, table

__all__ = ["CRD_DIR", "PAGE", "crds_page"]

PAGE = "reference/crds.md"
CRD_DIR = Path(__file__).resolve().parents[2] / "charts" / "crds"

Schema = Mapping[str, Any]

_LIMITS = (
    ("minimum", ">= {}"), ("maximum", "<= {}"),
    ("minLength", "length >= {}"), ("maxLength", "length <= {}"),
    ("minItems", ">= {} items"), ("maxItems", "<= {} items"),
    ("minProperties", ">= {} entries"), ("maxProperties", "<= {} entries"),
)  # fmt: skip


def _type(schema: Schema) -> str:
    kind = str(schema.get("type", "any"))
    if kind == "array":
        return f"list of {_type(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema:
        return f"map of {_type(schema['additionalProperties'])}"
    if schema.get("x-kubernetes-int-or-string"):
        return "int or string"
    return kind


def _limits(schema: Schema) -> str:
    parts = [text.format(schema[key]) for key, text in _LIMITS if key in schema]
    if "enum" in schema:
        parts.append("one of " + ", ".join(code(str(v)) for v in schema["enum"]))
    if "default" in schema:
        parts.append("default " + code(json.dumps(schema["default"])))
    return "; ".join(parts)


def _fields(schema: Schema, path: str, required: bool) -> Iterator[tuple[str, ...]]:
    yield (code(path), _type(schema), "yes" if required else "", _limits(schema),
           schema.get("description", ""))  # fmt: skip
    if schema.get("type") == "array":
        schema = schema.get("items", {})
        path += "[]"
    needed = set(schema.get("required", ()))
    for name, child in schema.get("properties", {}).items():
        yield from _fields(child, f"{path}.{name}", name in needed)


def _crds() -> Iterator[Schema]:
    for path in sorted(CRD_DIR.glob("*.yaml")):
        if path.name == "all.yaml":
            continue  # the same CRDs, concatenated for one `kubectl apply`
        yield from (d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)


def _crd_section(crd: Schema) -> Iterator[str]:
    spec = crd["spec"]
    for version in spec["versions"]:
        schema = version["schema"]["openAPIV3Schema"]
        rows = [
            row
            for top in ("spec", "status")
            if top in schema.get("properties", {})
            for row in _fields(schema["properties"][top], top, top in schema.get("required", ()))
        ]
        yield f"## {spec['names']['kind']} (`{spec['group']}/{version['name']}`)"
        yield (
            f"{schema.get('description', '')} Plural `{spec['names']['plural']}`, "
            f"{spec['scope'].lower()}."
        )
        yield table(("Field", "Type", "Required", "Limits and default", "Description"), rows)


def crds_page() -> str:
    parts = [
        GENERATED_NOTE,
        "# CRD fields",
        (
            "The custom resources igw reads, field by field, from the schemas in `charts/crds/` "
            "(`kubectl apply --server-side -f charts/crds/all.yaml` installs them). They are "
            "upstream GIE's APIs; the EPP watches them as described in "
            "[Running on Kubernetes](../getting-started/kubernetes.md)."
        ),
    ]
    for crd in _crds():
        parts += list(_crd_section(crd))
    return "\n\n".join(p.rstrip("\n") for p in parts) + "\n"
