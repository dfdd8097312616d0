"""YAML (or JSON) text -> `EndpointPickerConfigDoc`, strictly, with errors naming the field."""

from __future__ import annotations

import msgspec
import yaml

from igw.epp.config.errors import ConfigError, from_validation_error
from igw.epp.config.schema import API_VERSION, KIND, EndpointPickerConfigDoc

__all__ = ["decode"]


def decode(text: str) -> EndpointPickerConfigDoc:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError("", f"invalid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError("", "an EndpointPickerConfig must be a YAML mapping")
    try:
        doc = msgspec.convert(raw, EndpointPickerConfigDoc)
    except msgspec.ValidationError as e:
        raise from_validation_error(e) from None
    if doc.api_version != API_VERSION:
        raise ConfigError("apiVersion", f"must be {API_VERSION!r}, got {doc.api_version!r}")
    if doc.kind != KIND:
        raise ConfigError("kind", f"must be {KIND!r}, got {doc.kind!r}")
    return doc
