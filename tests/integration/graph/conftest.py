"""Fixtures pointing the Graph client at graphsim (TLS trust via ``REQUESTS_CA_BUNDLE``)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.graph.simhelpers import SimEnv, settings_for


@pytest.fixture
def graph_env(graphsim, monkeypatch) -> SimEnv:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", graphsim.ca_bundle)
    return SimEnv(graphsim, settings_for(graphsim))


@pytest.fixture
def sim_env(graphsim_factory, monkeypatch):
    """Build a ``SimEnv`` for a custom simulator: ``sim_env(mailboxes=..., seed=...)``."""

    def make(**kwargs: Any) -> SimEnv:
        sim = graphsim_factory(**kwargs)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", sim.ca_bundle)
        return SimEnv(sim, settings_for(sim))

    return make
