"""Connections over real HTTP: CRUD, validation, the Graph test probe, and secrets kept encrypted.

The Connections table is shared by every test of the session (one Azurite), so each test uses its
own connection ids and looks only at those in listings.
"""
from __future__ import annotations

import json
import re
import uuid

from azure.data.tables import TableServiceClient
from cryptography.fernet import Fernet

from mailextract.connections.schedule import ACCEPTED_FORMS

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
DEFAULT_OPTIONS = {"body_format": "html", "include_attachments": False, "purge_deleted": False}
POST_FIELDS = "config, enabled, folders, id, mailboxes, name, options, schedule"
PUT_FIELDS = "config, enabled, folders, mailboxes, name, options, schedule"


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _error(resp, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    return body["error"]["message"]


def _record_responses(stack) -> list[str]:
    """Every answer the stack's HTTP session receives from now on, as text."""
    seen: list[str] = []
    stack.http.hooks["response"].append(lambda resp, *args, **kwargs: seen.append(resp.text))
    return seen


def _tables(connection_string: str):
    service = TableServiceClient.from_connection_string(connection_string)
    return service.get_table_client("Connections"), service.get_table_client("CredentialVault")


def _row(table, connection_id: str) -> dict | None:
    rows = list(table.query_entities("PartitionKey eq 'connection' and RowKey eq @id",
                                     parameters={"id": connection_id}))
    return dict(rows[0]) if rows else None


def _vault_row(vault, ref: str) -> dict | None:
    rows = list(vault.query_entities("PartitionKey eq 'secret' and RowKey eq @ref", parameters={"ref": ref}))
    return dict(rows[0]) if rows else None


def _check_view(view: dict, expected: dict) -> None:
    """The whole view: timestamps by format, everything else exactly."""
    assert set(view) == {"id", "name", "mailboxes", "folders", "schedule", "interval_seconds", "options", "enabled",
                         "credentials", "created_at", "updated_at", "last_sync_at", "last_sync_status",
                         "next_sync_at"}
    for name in ("created_at", "updated_at", "next_sync_at"):
        assert ISO.match(view[name]), (name, view[name])
    assert {k: v for k, v in view.items() if k not in ("created_at", "updated_at", "next_sync_at")} == expected


def test_connection_lifecycle_keeps_credentials_encrypted_and_out_of_every_answer(stack, storage_connection_string):
    sim = stack.sim
    app, secret, rotated = _uid("own-app"), f"S3cret-{uuid.uuid4().hex}", f"R0tated-{uuid.uuid4().hex}"
    sim.register_app(sim.tenant_id, app, secret=secret)
    responses = _record_responses(stack)
    connections, vault = _tables(storage_connection_string)
    fernet = Fernet(stack.encryption_key.encode())
    config = {"tenant_id": sim.tenant_id, "outlook_client_id": app, "outlook_client_secret": secret}
    own_credentials = {"tenant_id": sim.tenant_id, "client_id": app, "client_secret": "set"}
    cid = _uid("team")

    # Create with the caller's own app registration.
    created = stack.post("connections", {
        "id": cid, "name": "Team mail", "config": config, "mailboxes": ["alice@contoso.com", "bob@contoso.com"],
        "folders": ["Inbox"], "schedule": "every 15 minutes", "options": {"body_format": "text"}})
    assert created.status_code == 201, created.text
    view = created.json()
    _check_view(view, {
        "id": cid, "name": "Team mail", "mailboxes": ["alice@contoso.com", "bob@contoso.com"], "folders": ["Inbox"],
        "schedule": "every 15 minutes", "interval_seconds": 900,
        "options": {"body_format": "text", "include_attachments": False, "purge_deleted": False}, "enabled": True,
        "credentials": own_credentials, "last_sync_at": None, "last_sync_status": None})
    assert view["created_at"] == view["updated_at"] == view["next_sync_at"]  # a new connection is due at once
    assert stack.get(f"connections/{cid}").json() == view

    # The record holds a reference; the vault holds the secret, only as ciphertext.
    row = _row(connections, cid)
    credential = json.loads(row["credential"])
    assert credential == {"kind": "vault", "tenant_id": sim.tenant_id, "client_id": app, "ref": credential["ref"]}
    first_ref = credential["ref"]
    stored = _vault_row(vault, first_ref)
    assert set(stored) == {"PartitionKey", "RowKey", "Ciphertext"} and secret not in json.dumps(stored)
    assert json.loads(fernet.decrypt(stored["Ciphertext"].encode()))["client_secret"] == secret

    # A second one on the app's own settings, with a generated id.
    plain = stack.post("connections", {"mailboxes": ["alice@contoso.com"], "schedule": "daily"})
    assert plain.status_code == 201, plain.text
    plain_id = plain.json()["id"]
    assert re.fullmatch(r"conn-[0-9a-f]{12}", plain_id)
    _check_view(plain.json(), {
        "id": plain_id, "name": None, "mailboxes": ["alice@contoso.com"], "folders": None, "schedule": "daily",
        "interval_seconds": 86400, "options": DEFAULT_OPTIONS, "enabled": True,
        "credentials": {"tenant_id": sim.tenant_id, "client_id": sim.client_id, "client_secret": "set"},
        "last_sync_at": None, "last_sync_status": None})
    assert json.loads(_row(connections, plain_id)["credential"]) == {
        "kind": "settings", "tenant_id": sim.tenant_id, "client_id": sim.client_id}

    listed = stack.get("connections")
    assert listed.status_code == 200 and set(listed.json()) == {"connections"}
    mine = [c for c in listed.json()["connections"] if c["id"] in (cid, plain_id)]
    assert mine == [view, plain.json()]  # oldest first

    # The same id again: 409, and nothing changes.
    again = stack.post("connections", {"id": cid, "mailboxes": ["carol@contoso.com"], "schedule": "hourly",
                                       "config": {**config, "outlook_client_secret": rotated}})
    assert _error(again, 409, "connection_exists") == f"connection '{cid}' already exists"
    assert stack.get(f"connections/{cid}").json() == view
    assert [r["RowKey"] for r in vault.list_entities() if r["RowKey"] == first_ref] == [first_ref]

    # Replace without config: the stored credential stays; omitted fields take their defaults.
    replaced = stack.http.put(stack.url(f"connections/{cid}"), json={
        "mailboxes": ["bob@contoso.com", "alice@contoso.com"], "schedule": "Every 2 Hours", "enabled": False})
    assert replaced.status_code == 200, replaced.text
    kept = replaced.json()
    _check_view(kept, {
        "id": cid, "name": None, "mailboxes": ["bob@contoso.com", "alice@contoso.com"], "folders": None,
        "schedule": "Every 2 Hours", "interval_seconds": 7200, "options": DEFAULT_OPTIONS, "enabled": False,
        "credentials": own_credentials, "last_sync_at": None, "last_sync_status": None})
    assert kept["created_at"] == view["created_at"] and kept["updated_at"] > view["updated_at"]
    assert kept["next_sync_at"] == kept["updated_at"]  # never synced: due at once under the new schedule
    assert json.loads(_row(connections, cid)["credential"])["ref"] == first_ref
    assert stack.get(f"connections/{cid}").json() == kept
    assert stack.post(f"connections/{cid}/test").json() == {"id": cid, "ok": True, "mailboxes": [
        {"user_upn": "bob@contoso.com", "ok": True}, {"user_upn": "alice@contoso.com", "ok": True}]}

    # Replace with a new secret: a new vault entry, the old one is gone, and the new secret works.
    sim.register_app(sim.tenant_id, app, secret=rotated)
    rotated_view = stack.http.put(stack.url(f"connections/{cid}"), json={
        "mailboxes": ["bob@contoso.com"], "schedule": "Every 2 Hours",
        "config": {**config, "outlook_client_secret": rotated}})
    assert rotated_view.status_code == 200, rotated_view.text
    assert rotated_view.json()["credentials"] == own_credentials
    new_ref = json.loads(_row(connections, cid)["credential"])["ref"]
    assert new_ref != first_ref and _vault_row(vault, first_ref) is None
    assert json.loads(fernet.decrypt(_vault_row(vault, new_ref)["Ciphertext"].encode()))["client_secret"] == rotated
    assert stack.post(f"connections/{cid}/test").json() == {
        "id": cid, "ok": True, "mailboxes": [{"user_upn": "bob@contoso.com", "ok": True}]}

    # Nothing readable anywhere: answers, Connections rows, vault rows, the host log.
    all_rows = json.dumps([dict(e) for e in connections.list_entities()], default=str)
    vault_rows = json.dumps([dict(e) for e in vault.list_entities()], default=str)
    log = stack.host.log_text()
    for value in (secret, rotated):
        assert not any(value in text for text in responses)
        assert value not in all_rows and value not in vault_rows and value not in log

    # Delete: the record and its vault entry go; the id is unknown afterwards.
    for connection_id in (cid, plain_id):
        deleted = stack.http.delete(stack.url(f"connections/{connection_id}"))
        assert deleted.status_code == 200 and deleted.json() == {"id": connection_id, "deleted": True}
        assert _row(connections, connection_id) is None
        assert _error(stack.get(f"connections/{connection_id}"), 404, "not_found") == \
            f"no connection '{connection_id}'"
    assert _vault_row(vault, new_ref) is None
    assert _error(stack.http.delete(stack.url(f"connections/{cid}")), 404, "not_found") == f"no connection '{cid}'"
    assert not [c for c in stack.get("connections").json()["connections"] if c["id"] in (cid, plain_id)]


def test_delete_is_refused_while_a_run_of_the_connection_is_active(stack):
    cid = _uid("busy")
    assert stack.post("connections", {"id": cid, "mailboxes": ["alice@contoso.com"],
                                      "schedule": "hourly"}).status_code == 201
    stack.sim.set_faults(latency_ms=300)  # keep the extraction run active while we try
    stack.start("alice@contoso.com", connection_id=cid)
    resp = stack.http.delete(stack.url(f"connections/{cid}"))
    assert _error(resp, 409, "job_conflict") == (f"connection '{cid}' has a sync or extraction running; it can be "
                                                 "deleted once it has finished (or cancel it)")
    assert stack.get(f"connections/{cid}").status_code == 200
    assert stack.post(f"emails/extract/cancel/{cid}").status_code == 200
    stack.wait(cid)
    deleted = stack.http.delete(stack.url(f"connections/{cid}"))
    assert deleted.status_code == 200 and deleted.json() == {"id": cid, "deleted": True}


BAD_POSTS = [
    ('{"mailboxes": ', "the request body is not valid JSON"),
    ("", "the request body must be a JSON object"),
    ("[1, 2]", "the request body must be a JSON object"),
    ('{"mailboxes": ["a@contoso.com"], "schedule": "hourly", "colour": 1}',
     f"unknown field(s): colour; expected {POST_FIELDS}"),
    ('{"id": "batch_x", "mailboxes": ["a@contoso.com"], "schedule": "hourly"}',
     "id must not start with 'batch_' (reserved for batches)"),
    ('{"id": "a#b", "mailboxes": ["a@contoso.com"], "schedule": "hourly"}',
     "id must not contain '/', '\\', '#', '?' or control characters"),
    ('{"id": "", "mailboxes": ["a@contoso.com"], "schedule": "hourly"}', "id must be a non-empty string"),
    ('{"name": "", "mailboxes": ["a@contoso.com"], "schedule": "hourly"}',
     "name must be a non-blank string of at most 200 characters, or null"),
    ('{"schedule": "hourly"}', "mailboxes must be a non-empty list of email addresses"),
    ('{"mailboxes": [], "schedule": "hourly"}', "mailboxes must be a non-empty list of email addresses"),
    ('{"mailboxes": ["a@contoso.com", "nope"], "schedule": "hourly"}', "mailboxes[1] is not an email address: 'nope'"),
    ('{"mailboxes": ["a@contoso.com", "A@CONTOSO.COM"], "schedule": "hourly"}',
     "mailboxes lists these more than once: A@CONTOSO.COM, a@contoso.com"),
    (json.dumps({"mailboxes": [f"u{i}@contoso.com" for i in range(101)], "schedule": "hourly"}),
     "mailboxes has 101 entries; at most 100 per connection"),
    ('{"mailboxes": ["a@contoso.com"], "folders": [], "schedule": "hourly"}',
     "folders must be a non-empty list of folder names, or null for every folder"),
    ('{"mailboxes": ["a@contoso.com"]}', f"schedule is required and must be one of {ACCEPTED_FORMS}"),
    ('{"mailboxes": ["a@contoso.com"], "schedule": "every 15 seconds"}',
     f"schedule must be one of {ACCEPTED_FORMS}; got 'every 15 seconds'"),
    ('{"mailboxes": ["a@contoso.com"], "schedule": "every 0 minutes"}',
     "schedule 'every 0 minutes': N must be at least 1"),
    ('{"mailboxes": ["a@contoso.com"], "schedule": "every 8 days"}',
     "schedule 'every 8 days' is too far apart: at least every 7 days (every 168 hours, every 10080 minutes)"),
    ('{"mailboxes": ["a@contoso.com"], "schedule": "hourly", "options": {"body_format": "pdf"}}',
     "options.body_format must be 'html' or 'text'"),
    ('{"mailboxes": ["a@contoso.com"], "schedule": "hourly", "options": {"purge_deleted": "yes"}}',
     "options.purge_deleted must be true or false"),
    ('{"mailboxes": ["a@contoso.com"], "schedule": "hourly", "options": {"folders": ["Inbox"]}}',
     "unknown option(s): folders; known: body_format, include_attachments, purge_deleted"),
    ('{"mailboxes": ["a@contoso.com"], "schedule": "hourly", "enabled": "no"}', "enabled must be true or false"),
    ('{"mailboxes": ["a@contoso.com"], "schedule": "hourly", "config": "x"}', "config must be an object"),
    ('{"mailboxes": ["a@contoso.com"], "schedule": "hourly", "config": {"client_secret": "x"}}',
     "unknown config field(s): client_secret; known: outlook_client_certificate_pem, "
     "outlook_client_certificate_thumbprint, outlook_client_id, outlook_client_secret, tenant_id"),
]


def test_bad_bodies_are_400_with_the_exact_message_and_change_nothing(stack):
    before = {c["id"] for c in stack.get("connections").json()["connections"]}
    failures = []
    for body, message in BAD_POSTS:
        resp = stack.http.post(stack.url("connections"), data=body, headers={"Content-Type": "application/json"})
        got = (resp.status_code, resp.json().get("error") if resp.headers.get("content-type", "").startswith(
            "application/json") else resp.text)
        if got != (400, {"code": "invalid_request", "message": message}):
            failures.append((body[:80], got))
    assert failures == []
    # Bad replacements leave the stored connection as it was.
    cid = _uid("keep")
    view = stack.post("connections", {"id": cid, "mailboxes": ["alice@contoso.com"], "schedule": "hourly"}).json()
    for body, message in [
        ('{"id": "x", "mailboxes": ["a@contoso.com"], "schedule": "hourly"}', f"unknown field(s): id; expected {PUT_FIELDS}"),
        ('{"mailboxes": ["a@contoso.com"], "schedule": "weekly"}', f"schedule must be one of {ACCEPTED_FORMS}; got 'weekly'"),
        ('{"schedule": "hourly"}', "mailboxes must be a non-empty list of email addresses"),
        ("", "the request body must be a JSON object"),
    ]:
        resp = stack.http.put(stack.url(f"connections/{cid}"), data=body, headers={"Content-Type": "application/json"})
        assert _error(resp, 400, "invalid_request") == message
    assert stack.get(f"connections/{cid}").json() == view
    after = {c["id"] for c in stack.get("connections").json()["connections"]}
    assert after - before == {cid}


def test_unknown_connection_is_404_on_every_route(stack):
    cid = _uid("never-created")
    for method, path, body in [("GET", f"connections/{cid}", None),
                               ("PUT", f"connections/{cid}", {"mailboxes": ["a@contoso.com"], "schedule": "hourly"}),
                               ("DELETE", f"connections/{cid}", None), ("POST", f"connections/{cid}/test", None)]:
        resp = stack.http.request(method, stack.url(path), json=body)
        assert _error(resp, 404, "not_found") == f"no connection '{cid}'", (method, path)


def test_test_reports_each_mailbox_and_credential_failures(stack):
    sim = stack.sim
    app, secret = _uid("probe-app"), f"S3cret-{uuid.uuid4().hex}"
    sim.register_app(sim.tenant_id, app, secret=secret)
    sim.deny(app, "bob@contoso.com")
    config = {"tenant_id": sim.tenant_id, "outlook_client_id": app, "outlook_client_secret": secret}
    responses = _record_responses(stack)

    def create(mailboxes, config=None) -> str:
        cid = _uid("probe")
        body = {"id": cid, "mailboxes": mailboxes, "schedule": "every 15 minutes"}
        if config:
            body["config"] = config
        assert stack.post("connections", body).status_code == 201
        return cid

    def test(cid) -> dict:
        resp = stack.post(f"connections/{cid}/test")
        assert resp.status_code == 200, resp.text
        return resp.json()

    # All ok (settings' app).
    ok = create(["alice@contoso.com", "bob@contoso.com"])
    assert test(ok) == {"id": ok, "ok": True, "mailboxes": [{"user_upn": "alice@contoso.com", "ok": True},
                                                             {"user_upn": "bob@contoso.com", "ok": True}]}
    # Own app: bob denied to it, an unknown mailbox; alice fine.
    mixed = create(["alice@contoso.com", "bob@contoso.com", "nobody@contoso.com"], config)
    assert test(mixed) == {"id": mixed, "ok": False, "mailboxes": [
        {"user_upn": "alice@contoso.com", "ok": True},
        {"user_upn": "bob@contoso.com", "ok": False, "error": {
            "code": "access_denied",
            "message": "Graph answered 403 ErrorAccessDenied on GET /v1.0/users/bob@contoso.com/messages for "
                       "mailbox bob@contoso.com: Access is denied. Check credentials and try again."}},
        {"user_upn": "nobody@contoso.com", "ok": False, "error": {
            "code": "mailbox_not_found",
            "message": "Graph answered 404 ResourceNotFound on GET /v1.0/users/nobody@contoso.com/messages for "
                       "mailbox nobody@contoso.com: User not found"}}]}
    # Unknown mailbox first: it fails alone, the others are still read.
    first_bad = create(["nobody@contoso.com", "alice@contoso.com"], config)
    result = test(first_bad)
    assert [(m["user_upn"], m["ok"], m.get("error", {}).get("code")) for m in result["mailboxes"]] == [
        ("nobody@contoso.com", False, "mailbox_not_found"), ("alice@contoso.com", True, None)]
    assert result["ok"] is False and "error" not in result
    # A wrong secret: the whole connection fails, every mailbox with the same error.
    wrong = create(["alice@contoso.com", "bob@contoso.com"], {**config, "outlook_client_secret": "not-the-secret"})
    tokens_before = sim.stats()["token_requests"]
    error = {"code": "authentication_failed",
             "message": f"authentication failed for client {app} in tenant {sim.tenant_id}: invalid_client: "
                        "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request "
                        "is the client secret value, not the client secret ID, for a secret added to app "
                        f"'{app}'."}
    assert test(wrong) == {"id": wrong, "ok": False, "error": error, "mailboxes": [
        {"user_upn": "alice@contoso.com", "ok": False, "error": error},
        {"user_upn": "bob@contoso.com", "ok": False, "error": error}]}
    assert sim.stats()["token_requests"] - tokens_before == 1  # one token request, not one per mailbox
    assert not any(s in text for text in responses for s in (secret, "not-the-secret"))
    for cid in (ok, mixed, first_bad, wrong):
        assert stack.http.delete(stack.url(f"connections/{cid}")).status_code == 200


def test_store_against_azurite_round_trips_retries_on_etag_conflicts_and_finds_due_connections(
        storage_connection_string):
    """ConnectionStore itself (what the sync reads): no app needed, only the real Table storage."""
    from datetime import datetime, timedelta, timezone

    from mailextract.connections.store import ConnectionStore
    from mailextract.errors import ConnectionExists
    from mailextract.settings import Settings

    store = ConnectionStore(Settings.from_mapping({"AzureWebJobsStorage": storage_connection_string}))
    now = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
    base = {"name": None, "mailboxes": ["alice@contoso.com"], "folders": None, "schedule": "hourly",
            "interval_seconds": 3600, "options": DEFAULT_OPTIONS, "enabled": True,
            "credential": {"kind": "settings", "tenant_id": "t", "client_id": "c"},
            "created_at": "2025-03-01T10:00:00.000000Z", "updated_at": "2025-03-01T10:00:00.000000Z",
            "last_sync_at": None, "last_sync_status": None}
    ids = {name: _uid(f"store-{name}") for name in ("past", "exact", "future", "disabled", "missing")}
    store.create(ids["past"], {**base, "next_sync_at": "2025-03-01T11:00:00.000000Z"})
    store.create(ids["exact"], {**base, "next_sync_at": "2025-03-01T12:00:00.000000Z"})
    store.create(ids["future"], {**base, "next_sync_at": "2025-03-01T12:00:00.000001Z"})
    store.create(ids["disabled"], {**base, "enabled": False, "next_sync_at": "2025-03-01T11:00:00.000000Z"})
    store.create(ids["missing"], {**base, "next_sync_at": None})

    got = store.get(ids["past"])
    assert {k: v for k, v in got.items() if k != "etag"} == {
        **base, "id": ids["past"], "next_sync_at": "2025-03-01T11:00:00.000000Z"}  # None fields read back as None
    assert got["etag"]
    try:
        store.create(ids["past"], base)
        raise AssertionError("create overwrote an existing connection")
    except ConnectionExists as exc:
        assert str(exc) == f"connection '{ids['past']}' already exists"

    due = {r["id"] for r in store.due(now)} & set(ids.values())
    assert due == {ids["past"], ids["exact"], ids["missing"]}
    assert {r["id"] for r in store.due(now + timedelta(hours=1))} & set(ids.values()) == \
        {ids["past"], ids["exact"], ids["future"], ids["missing"]}

    # A concurrent writer between read and write: the update re-reads and applies both changes.
    other = ConnectionStore(store.settings)
    calls = []

    def mutate(record):
        calls.append(dict(record))
        if len(calls) == 1:
            other.update(ids["past"], lambda r: r.update(last_sync_status="completed", last_sync_run="run-1"))
        record["enabled"] = False

    stored = store.update(ids["past"], mutate)
    assert len(calls) == 2 and calls[1]["last_sync_status"] == "completed"
    again = store.get(ids["past"])
    assert again == stored
    assert (again["enabled"], again["last_sync_status"], again["last_sync_run"]) == (False, "completed", "run-1")
    assert store.update(ids["past"], lambda r: False)["etag"] == again["etag"]  # False leaves the row alone
    assert store.update(_uid("store-none"), lambda r: None) is None

    listed = [r["id"] for r in store.list() if r["id"] in ids.values()]
    assert listed == sorted(ids.values())  # same created_at: by id
    for connection_id in ids.values():
        store.delete(connection_id)
        assert store.get(connection_id) is None
    store.delete(ids["past"])  # deleting twice is fine
