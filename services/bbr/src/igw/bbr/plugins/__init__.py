"""BBR plugins: one module per plugin type, named after it, and the contract they share."""

from igw.bbr.plugins._base import AdapterLookup, Mutations, PluginHandle, RequestPlugin
from igw.bbr.plugins.base_model_to_header import BASE_MODEL_HEADER, BaseModelToHeader
from igw.bbr.plugins.body_field_to_header import BodyFieldToHeader

__all__ = [
    "BASE_MODEL_HEADER",
    "AdapterLookup",
    "BaseModelToHeader",
    "BodyFieldToHeader",
    "Mutations",
    "PluginHandle",
    "RequestPlugin",
]
