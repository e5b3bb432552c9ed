"""ConnectionService over fakes: records, views, credential handling, delete guards and the test probe."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest

from mailextract.connections.service import ConnectionService
from mailextract.errors import (AccessDenied, ConnectionExists, GraphUnavailable, InvalidRequest, JobConflict,
                                JobNotFound, MailboxNotFound, MissingCredentials)
from mailextract.settings import Settings
from tests.unit.connections.fakes import FakeGraph, FakeJobs, FakeVault, MemoryStore

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
SETTINGS = Settings(tenant_id="settings-tenant", outlook_client_id="settings-app",
                    outlook_client_secret="settings-secret")
OWN = {"tenant_id": "own-tenant", "outlook_client_id": "own-app", "outlook_client_secret": "own-secret-123"}
BODY = {"mailboxes": ["alice@contoso.com", "bob@contoso.com"], "schedule": "every 15 minutes"}
DEFAULT_OPTIONS = {"body_format": "html", "include_attachments": False, "purge_deleted": False}


class Env:
    def __init__(self, settings=SETTINGS):
        self.now = T0
        self.store = MemoryStore()
        self.vault = FakeVault(settings)
        self.graph = FakeGraph({"settings-app": "settings-secret", "own-app": "own-secret-123"})
        self.jobs = FakeJobs()
        self.service = ConnectionService(settings, self.store, self.vault, self.graph, jobs=self.jobs,
                                         clock=lambda: self.now)

    def run(self, name, *args, **kwargs):
        return asyncio.run(getattr(self.service, name)(*args, **kwargs))

    def error(self, name, *args, **kwargs):
        with pytest.raises(Exception) as info:
            self.run(name, *args, **kwargs)
        return info.value


@pytest.fixture
def env():
    return Env()


def test_create_stores_a_reference_and_answers_the_view(env):
    view = env.run("create", {**BODY, "id": "team", "name": "Team", "config": OWN})
    assert view == {
        "id": "team", "name": "Team", "mailboxes": ["alice@contoso.com", "bob@contoso.com"], "folders": None,
        "schedule": "every 15 minutes", "interval_seconds": 900, "options": DEFAULT_OPTIONS, "enabled": True,
        "credentials": {"tenant_id": "own-tenant", "client_id": "own-app", "client_secret": "set"},
        "created_at": "2025-03-01T12:00:00.000000Z", "updated_at": "2025-03-01T12:00:00.000000Z",
        "last_sync_at": None, "last_sync_status": None, "next_sync_at": "2025-03-01T12:00:00.000000Z"}
    row = env.store.rows["team"]
    assert row["credential"] == {"kind": "vault", "ref": "ref-1", "tenant_id": "own-tenant", "client_id": "own-app"}
    assert env.vault.entries == {"ref-1": "own-secret-123"}
    assert "own-secret-123" not in json.dumps(row) + json.dumps(view)
    assert env.run("get", "team") == view
    assert env.store.due(T0) == [env.store.get("team")]


def test_settings_credentials_show_set_only_when_the_settings_have_a_secret(env):
    view = env.run("create", {**BODY, "id": "plain"})
    assert view["credentials"] == {"tenant_id": "settings-tenant", "client_id": "settings-app", "client_secret": "set"}
    assert env.vault.entries == {}
    bare = ConnectionService(Settings(tenant_id="settings-tenant", outlook_client_id="settings-app"),
                             env.store, env.vault, env.graph, jobs=env.jobs)
    assert asyncio.run(bare.get("plain"))["credentials"]["client_secret"] == "not set"


def test_generated_ids_and_list_order(env):
    first = env.run("create", BODY)
    env.now = T0 + timedelta(seconds=1)
    second = env.run("create", {**BODY, "id": "a-second"})
    assert first["id"].startswith("conn-") and len(first["id"]) == 17
    assert [c["id"] for c in env.run("list")["connections"]] == [first["id"], "a-second"]


def test_duplicate_id_is_409_and_stores_no_secret(env):
    env.run("create", {**BODY, "id": "team", "config": OWN})
    err = env.error("create", {**BODY, "id": "team", "config": {**OWN, "outlook_client_secret": "other"}})
    assert isinstance(err, ConnectionExists) and err.code == "connection_exists"
    assert str(err) == "connection 'team' already exists"
    assert env.vault.entries == {"ref-1": "own-secret-123"}


def test_missing_credentials_store_nothing():
    env = Env(Settings())
    err = env.error("create", {**BODY, "id": "x", "config": {"tenant_id": "t"}})
    assert isinstance(err, MissingCredentials)
    assert str(err) == ("missing credentials: outlook_client_id (or setting OUTLOOK_CLIENT_ID), "
                        "outlook_client_secret (or setting OUTLOOK_CLIENT_SECRET)")
    assert env.store.rows == {} and env.vault.entries == {}


def test_bad_body_stores_nothing(env):
    err = env.error("create", {**BODY, "config": OWN, "schedule": "weekly"})
    assert isinstance(err, InvalidRequest)
    assert env.store.rows == {} and env.vault.entries == {}


def test_unknown_ids_are_404(env):
    for name, args in [("get", ("nope",)), ("replace", ("nope", BODY)), ("delete", ("nope",)), ("test", ("nope",))]:
        err = env.error(name, *args)
        assert isinstance(err, JobNotFound) and str(err) == "no connection 'nope'"
    assert env.vault.entries == {}


def test_replace_keeps_credentials_and_sync_state_and_resets_omitted_fields(env):
    env.run("create", {**BODY, "id": "team", "name": "Team", "config": OWN, "folders": ["Inbox"],
                       "options": {"purge_deleted": True}, "enabled": False})
    env.store.update("team", lambda r: r.update(last_sync_at="2025-03-01T12:05:00.000000Z",
                                                last_sync_status="completed", sync_state={"x": 1},
                                                next_sync_at="2025-03-01T12:20:00.000000Z"))
    env.now = T0 + timedelta(minutes=10)
    view = env.run("replace", "team", {"mailboxes": ["carol@contoso.com"], "schedule": "every 15 minutes"})
    assert view == {
        "id": "team", "name": None, "mailboxes": ["carol@contoso.com"], "folders": None,
        "schedule": "every 15 minutes", "interval_seconds": 900, "options": DEFAULT_OPTIONS, "enabled": True,
        "credentials": {"tenant_id": "own-tenant", "client_id": "own-app", "client_secret": "set"},
        "created_at": "2025-03-01T12:00:00.000000Z", "updated_at": "2025-03-01T12:10:00.000000Z",
        "last_sync_at": "2025-03-01T12:05:00.000000Z", "last_sync_status": "completed",
        "next_sync_at": "2025-03-01T12:20:00.000000Z"}
    assert env.store.rows["team"]["sync_state"] == {"x": 1}
    assert env.vault.entries == {"ref-1": "own-secret-123"}
    # A new schedule moves the next sync: one new interval after the last sync.
    view = env.run("replace", "team", {"mailboxes": ["carol@contoso.com"], "schedule": "every hour"})
    assert view["next_sync_at"] == "2025-03-01T13:05:00.000000Z"


def test_replace_with_config_swaps_the_vault_entry(env):
    env.run("create", {**BODY, "id": "team", "config": OWN})
    view = env.run("replace", "team", {**BODY, "config": {**OWN, "outlook_client_secret": "rotated"}})
    assert view["credentials"] == {"tenant_id": "own-tenant", "client_id": "own-app", "client_secret": "set"}
    assert env.vault.entries == {"ref-2": "rotated"}
    view = env.run("replace", "team", {**BODY, "config": {}})  # back to the settings' app
    assert view["credentials"] == {"tenant_id": "settings-tenant", "client_id": "settings-app", "client_secret": "set"}
    assert env.vault.entries == {}


def test_credentials_cannot_be_replaced_nor_deleted_while_a_run_is_active(env):
    env.run("create", {**BODY, "id": "team", "config": OWN})
    env.jobs.rows["team"] = {"status": "in_progress"}
    err = env.error("replace", "team", {**BODY, "config": {**OWN, "outlook_client_secret": "rotated"}})
    assert isinstance(err, JobConflict)
    assert str(err) == ("connection 'team' has a sync or extraction running; its credentials can be replaced "
                        "once it has finished (or cancel it)")
    assert env.vault.entries == {"ref-1": "own-secret-123"}
    assert env.run("replace", "team", {**BODY, "enabled": False})["enabled"] is False  # without config: fine
    err = env.error("delete", "team")
    assert isinstance(err, JobConflict)
    assert str(err) == ("connection 'team' has a sync or extraction running; it can be deleted "
                        "once it has finished (or cancel it)")
    env.jobs.rows["team"] = {"status": "completed"}
    assert env.run("delete", "team") == {"id": "team", "deleted": True}
    assert env.store.rows == {} and env.vault.entries == {}


def test_delete_asks_the_given_checker(env):
    env.run("create", {**BODY, "id": "team"})
    asked = []

    async def active(connection_id):
        asked.append(connection_id)
        return True

    assert isinstance(env.error("delete", "team", is_active=active), JobConflict)
    assert asked == ["team"] and "team" in env.store.rows

    async def idle(connection_id):
        return False

    env.jobs.rows["team"] = {"status": "paused"}  # the given checker decides, not the job row
    assert env.run("delete", "team", is_active=idle) == {"id": "team", "deleted": True}


def test_test_all_ok_reads_one_message_per_mailbox(env):
    env.run("create", {**BODY, "id": "team", "config": OWN})
    assert env.run("test", "team") == {"id": "team", "ok": True, "mailboxes": [
        {"user_upn": "alice@contoso.com", "ok": True}, {"user_upn": "bob@contoso.com", "ok": True}]}
    assert [(app, upn, cursor["top"], cursor["select"]) for app, upn, cursor in env.graph.calls] == [
        ("own-app", "alice@contoso.com", 1, "id"), ("own-app", "bob@contoso.com", 1, "id")]


def test_test_reports_each_bad_mailbox(env):
    env.run("create", {"id": "team", "schedule": "hourly",
                       "mailboxes": ["nobody@contoso.com", "alice@contoso.com", "bob@contoso.com", "carol@contoso.com"]})
    env.graph.failures = {
        "nobody@contoso.com": MailboxNotFound("mailbox nobody@contoso.com not found"),
        "bob@contoso.com": AccessDenied("access to bob@contoso.com denied"),
        "carol@contoso.com": GraphUnavailable(mailbox="carol@contoso.com", call="GET /x", reason="503",
                                              attempts=3, waited_seconds=1.0)}
    result = env.run("test", "team")
    assert result == {"id": "team", "ok": False, "mailboxes": [
        {"user_upn": "nobody@contoso.com", "ok": False,
         "error": {"code": "mailbox_not_found", "message": "mailbox nobody@contoso.com not found"}},
        {"user_upn": "alice@contoso.com", "ok": True},
        {"user_upn": "bob@contoso.com", "ok": False,
         "error": {"code": "access_denied", "message": "access to bob@contoso.com denied"}},
        {"user_upn": "carol@contoso.com", "ok": False,
         "error": {"code": "graph_unavailable",
                   "message": "GET /x for mailbox carol@contoso.com gave up after 3 attempt(s) and 1.0s of "
                              "waiting: 503"}}]}


def test_test_with_a_wrong_secret_fails_every_mailbox_after_one_request(env):
    env.run("create", {**BODY, "id": "team", "config": {**OWN, "outlook_client_secret": "wrong-secret"}})
    error = {"code": "authentication_failed",
             "message": "authentication failed for client own-app in tenant own-tenant: invalid_client: "
                        "AADSTS7000215: Invalid client secret provided."}
    assert env.run("test", "team") == {"id": "team", "ok": False, "error": error, "mailboxes": [
        {"user_upn": "alice@contoso.com", "ok": False, "error": error},
        {"user_upn": "bob@contoso.com", "ok": False, "error": error}]}
    assert len(env.graph.calls) == 1


def test_test_with_an_unreadable_or_missing_secret(env):
    env.run("create", {**BODY, "id": "team", "config": OWN})
    env.vault.entries.clear()  # e.g. encrypted under a key that was rotated away
    result = env.run("test", "team")
    error = {"code": "missing_credentials",
             "message": "missing credentials: outlook_client_secret (the stored secret can no longer be read)"}
    assert result["ok"] is False and result["error"] == error
    assert [m["error"] for m in result["mailboxes"]] == [error, error]

    env.run("create", {**BODY, "id": "plain"})
    bare = ConnectionService(Settings(tenant_id="settings-tenant", outlook_client_id="settings-app"),
                             env.store, env.vault, env.graph, jobs=env.jobs)
    result = asyncio.run(bare.test("plain"))
    assert result["error"] == {"code": "missing_credentials",
                               "message": "missing credentials: outlook_client_secret (or setting OUTLOOK_CLIENT_SECRET)"}
    assert env.graph.calls == []
