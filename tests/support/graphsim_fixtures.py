"""Fixtures that start graphsim (the Graph + Entra ID simulator) for tests.

- `graphsim`: a fresh small simulator per test (alice@contoso.com: 120 messages, bob@contoso.com: 30,
  seed 1), stopped after the test.
- `graphsim_factory`: call it with GraphSim.start's arguments to start more (other seeds, sizes,
  fault options); every simulator it started is stopped after the test.
- `graphsim_env`: the project's settings for the `graphsim` simulator, with REQUESTS_CA_BUNDLE set in
  the environment for the test (MSAL and requests then trust the simulator's test CA).
"""
from __future__ import annotations

import pytest

from graphsim.testing import GraphSim


@pytest.fixture
def graphsim():
    with GraphSim.start(mailboxes={"alice@contoso.com": 120, "bob@contoso.com": 30}, seed=1) as sim:
        yield sim


@pytest.fixture
def graphsim_factory():
    started: list[GraphSim] = []

    def start(**kwargs) -> GraphSim:
        sim = GraphSim.start(**kwargs)
        started.append(sim)
        return sim

    yield start
    for sim in reversed(started):
        sim.stop()


@pytest.fixture
def graphsim_env(graphsim, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", graphsim.ca_bundle)
    return {
        "TENANT_ID": graphsim.tenant_id,
        "OUTLOOK_CLIENT_ID": graphsim.client_id,
        "OUTLOOK_CLIENT_SECRET": graphsim.client_secret,
        "AZURE_AUTHORITY_HOST": graphsim.authority_host,
        "GRAPH_API_ENDPOINT": graphsim.graph_endpoint,
        "REQUESTS_CA_BUNDLE": graphsim.ca_bundle,
    }
