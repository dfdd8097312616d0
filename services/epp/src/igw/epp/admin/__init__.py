"""The EPP's admin API, "why this pod?": `ListEndpoints` and `Explain` over gRPC, and the
`igw-epp endpoints` / `igw-epp explain` commands that print them as tables.

`explain` and `inventory` compute the answers as plain values; `service` is the only module that
speaks protobuf (the generated `igw.epp._generated` package); `tables` and `cli` present them.
"""

from igw.epp.admin.cli import ADMIN_COMMANDS, add_admin_commands, admin_main, run_admin
from igw.epp.admin.explain import Explainer, ExplainFailure, Explanation
from igw.epp.admin.inventory import EndpointReport, InFlightReader, Inventory, find_inflight_reader
from igw.epp.admin.service import AdminClient, AdminService
from igw.epp.admin.tables import endpoints_table, explain_table

__all__ = [
    "ADMIN_COMMANDS",
    "AdminClient",
    "AdminService",
    "EndpointReport",
    "ExplainFailure",
    "Explainer",
    "Explanation",
    "InFlightReader",
    "Inventory",
    "add_admin_commands",
    "admin_main",
    "endpoints_table",
    "explain_table",
    "find_inflight_reader",
    "run_admin",
]
