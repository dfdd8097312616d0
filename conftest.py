"""Fixtures every test package shares: free ports, real Envoy processes, the fault report."""

pytest_plugins = ["igw.common.testing.pytest_plugin", "igw.e2e.fault_report"]
