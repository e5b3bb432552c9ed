"""Hand-written fakes of the ports ConnectionService uses: the store, the vault, Graph, job rows."""
from __future__ import annotations

import copy
import itertools
from typing import Any

from mailextract.connections.store import is_due
from mailextract.errors import AuthenticationFailed, ConnectionExists, MissingCredentials
from mailextract.graph.credentials import GraphCredentials


class MemoryStore:
    """ConnectionStore's interface over a dict (records are copied in and out, like a table)."""

    def __init__(self):
        self.rows: dict[str, dict[str, Any]] = {}
        self._etags = itertools.count(1)

    def _out(self, key: str) -> dict[str, Any]:
        return copy.deepcopy(self.rows[key]) | {"id": key}

    def create(self, connection_id, record):
        if connection_id in self.rows:
            raise ConnectionExists(f"connection '{connection_id}' already exists")
        self.rows[connection_id] = copy.deepcopy(record) | {"etag": next(self._etags)}

    def get(self, connection_id):
        return self._out(connection_id) if connection_id in self.rows else None

    def list(self):
        return sorted((self._out(k) for k in self.rows), key=lambda r: (r["created_at"], r["id"]))

    def update(self, connection_id, mutate):
        current = self.get(connection_id)
        if current is None:
            return None
        if mutate(current) is False:
            return current
        current["etag"] = next(self._etags)
        self.rows[connection_id] = {k: v for k, v in copy.deepcopy(current).items() if k != "id"}
        return current

    def delete(self, connection_id):
        self.rows.pop(connection_id, None)

    def due(self, now):
        return [r for r in self.list() if is_due(r, now)]


class FakeVault:
    """reference_for / credentials / forget, with the settings app `settings-tenant`/`settings-app`."""

    def __init__(self, settings):
        self.settings = settings
        self.entries: dict[str, str] = {}
        self._refs = itertools.count(1)

    def reference_for(self, config):
        creds = GraphCredentials.resolve(config, self.settings)
        reference = {"kind": "settings", "tenant_id": creds.tenant_id, "client_id": creds.client_id}
        if creds.client_secret != self.settings.outlook_client_secret:
            ref = f"ref-{next(self._refs)}"
            self.entries[ref] = creds.client_secret
            reference.update(kind="vault", ref=ref)
        return reference

    def credentials(self, reference):
        if reference["kind"] == "settings":
            secret = self.settings.outlook_client_secret
        elif reference["ref"] in self.entries:
            secret = self.entries[reference["ref"]]
        else:
            raise MissingCredentials(["outlook_client_secret (the stored secret can no longer be read)"])
        return GraphCredentials(reference["tenant_id"], reference["client_id"], client_secret=secret)

    def forget(self, reference):
        if reference and reference.get("kind") == "vault":
            self.entries.pop(reference["ref"], None)


class FakeGraph:
    """A client factory: apps in `secrets` authenticate; `failures[upn]` is raised for that mailbox."""

    def __init__(self, secrets: dict[str, str]):
        self.secrets = secrets
        self.failures: dict[str, Exception] = {}
        self.calls: list[tuple[str, str, dict]] = []

    def __call__(self, credentials: GraphCredentials) -> "FakeClient":
        return FakeClient(self, credentials)


class FakeClient:
    def __init__(self, graph: FakeGraph, credentials: GraphCredentials):
        self.graph = graph
        self.credentials = credentials

    def messages_cursor(self, folder_id=None, **options):
        return {"folder_id": folder_id, **options}

    def list_messages_page(self, upn, cursor):
        self.graph.calls.append((self.credentials.client_id, upn, cursor))
        if self.graph.secrets.get(self.credentials.client_id) != self.credentials.client_secret:
            raise AuthenticationFailed("AADSTS7000215: Invalid client secret provided.", error="invalid_client",
                                       aadsts_code="AADSTS7000215", tenant_id=self.credentials.tenant_id,
                                       client_id=self.credentials.client_id)
        if upn in self.graph.failures:
            raise self.graph.failures[upn]
        return object()


class FakeJobs:
    def __init__(self):
        self.rows: dict[str, dict[str, Any]] = {}

    def get(self, connection_id):
        return self.rows.get(connection_id)
