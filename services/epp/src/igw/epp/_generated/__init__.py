"""GENERATED CODE: do not edit. Regenerate with `make proto` (see proto/compile.py).

Python modules compiled from `proto/` by grpcio-tools, at their proto paths below this package
(`igw.epp._generated.igw.epp.admin.v1.admin_pb2`). Excluded from ruff and mypy; only
`igw.epp.admin.service` imports them. This file is the one hand-written file here.
"""
