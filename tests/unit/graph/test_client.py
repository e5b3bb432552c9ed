"""GraphClient construction: lazy, cached per process per app registration and endpoint."""

import re
import subprocess
import sys
from pathlib import Path

from mailextract.graph import GraphClient, GraphCredentials
from mailextract.settings import Settings

SETTINGS = Settings.from_mapping({"AZURE_AUTHORITY_HOST": "https://127.0.0.1:9", "GRAPH_API_ENDPOINT": "https://127.0.0.1:9",
                                  "GRAPH_PAGE_SIZE": "37", "GRAPH_MAX_TOTAL_WAIT_SECONDS": "12"})
CREDS = GraphCredentials("tenant-a", "client-a", client_secret="secret-a")


def test_clients_are_cached_per_app_and_endpoint_and_built_without_connecting():
    # Port 9 on localhost is closed: building a client must not touch the network.
    a = GraphClient.for_credentials(CREDS, SETTINGS)
    assert GraphClient.for_credentials(GraphCredentials("tenant-a", "client-a", client_secret="secret-a"), SETTINGS) is a
    assert GraphClient.for_credentials(GraphCredentials("tenant-a", "client-a", client_secret="rotated"), SETTINGS) is not a
    assert GraphClient.for_credentials(GraphCredentials("tenant-b", "client-a", client_secret="secret-a"), SETTINGS) is not a
    other_cloud = Settings.from_mapping({"GRAPH_API_ENDPOINT": "https://graph.microsoft.us"})
    assert GraphClient.for_credentials(CREDS, other_cloud) is not a
    fresh = GraphClient.for_credentials(CREDS, SETTINGS, cached=False)
    assert fresh is not a and fresh.transport.tokens is not a.transport.tokens
    # ...but every client of the process shares the pooled session and the mailbox limiters.
    assert fresh.transport.sender.session is a.transport.sender.session
    assert fresh.transport.limiters is a.transport.limiters


def test_client_takes_its_knobs_from_settings():
    client = GraphClient.for_credentials(CREDS, SETTINGS)
    assert client.page_size == 37
    assert client.transport.base_url == "https://127.0.0.1:9/v1.0"
    assert client.transport.policy.max_total_wait == 12.0
    assert client.transport.tokens.scope == "https://127.0.0.1:9/.default"
    assert client.transport.tokens.authority == "https://127.0.0.1:9/tenant-a"
    assert client.messages_cursor()["query"]["$top"] == "37"


def test_for_request_resolves_credentials_from_config_then_settings():
    settings = Settings.from_mapping({"TENANT_ID": "tenant-s", "OUTLOOK_CLIENT_ID": "client-s",
                                      "OUTLOOK_CLIENT_SECRET": "secret-s"})
    client = GraphClient.for_request({"outlook_client_id": "client-r"}, settings)
    assert (client.transport.tokens.credentials.tenant_id, client.transport.tokens.credentials.client_id) == (
        "tenant-s", "client-r")


def test_importing_the_package_connects_to_nothing_and_loads_no_sdk():
    code = ("import sys, mailextract.graph, mailextract.settings, mailextract.errors; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('msal', 'requests', 'azure', 'urllib3')))")
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_core_graph_package_never_imports_azure_functions():
    pattern = re.compile(r"^\s*(import azure\.functions|from azure\.functions|from azure import functions)", re.M)
    root = Path(__file__).resolve().parents[3] / "mailextract"
    offenders = [str(p) for p in root.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
