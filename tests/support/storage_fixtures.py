"""Real Azure Storage for the suite: one Azurite per test session, on free ports."""
from __future__ import annotations

import pytest

from devhost.azurite import start_azurite


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory):
    """Where logs of started processes go; pytest keeps the last few runs' tmp dirs."""
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory, artifacts_dir):
    server = start_azurite(tmp_path_factory.mktemp("azurite"), artifacts_dir / "azurite.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def storage_connection_string(azurite) -> str:
    return azurite.connection_string
