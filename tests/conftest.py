"""Shared fixtures: real Azurite, devhost and graphsim, each started by the suite on free ports.

The fixture modules live in tests/support/ so each real part has one home.
"""
pytest_plugins = [
    "tests.support.storage_fixtures",
    "tests.support.devhost_fixtures",
    "tests.support.graphsim_fixtures",
]
