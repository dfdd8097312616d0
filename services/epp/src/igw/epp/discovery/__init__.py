"""Where the EPP's endpoints come from. This issue has one source: a static YAML file.

A source's only duty is to call `reconcile(endpoints)` on the datastore with the complete current
list (level-triggered), so Kubernetes discovery can later be added beside it.
"""

from igw.epp.discovery.static import (
    Reconciler,
    StaticDiscovery,
    StaticDiscoveryError,
    parse_endpoints_file,
)

__all__ = ["Reconciler", "StaticDiscovery", "StaticDiscoveryError", "parse_endpoints_file"]
