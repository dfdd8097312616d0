"""Fixtures every test package shares: free ports and real Envoy processes."""

pytest_plugins = ["igw.common.testing.pytest_plugin"]
