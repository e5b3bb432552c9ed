"""Bad input gets a clear 4xx JSON error and stores nothing; Graph errors end a run `failed`."""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest


def _error(resp, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    return body["error"]["message"]


@pytest.mark.parametrize("body, message", [
    ('{"user_upn": ', "the request body is not valid JSON"),
    ("", "the request body must be a JSON object"),
    ("[1, 2]", "the request body must be a JSON object"),
    ("{}", "user_upn is required and must be an email address"),
    ('{"user_upn": "not-an-address"}', "user_upn is not an email address: 'not-an-address'"),
    ('{"user_upn": 42}', "user_upn is required and must be an email address"),
    ('{"user_upn": "a@contoso.com", "extra": 1}', "unknown field(s): extra; expected config, options, user_upn"),
    ('{"user_upn": "a@contoso.com", "config": "x"}', "config must be an object"),
    ('{"user_upn": "a@contoso.com", "options": {"body_format": "pdf"}}', "options.body_format must be 'html' or 'text'"),
    ('{"user_upn": "a@contoso.com", "options": {"include_attachments": "yes"}}',
     "options.include_attachments must be true or false"),
    ('{"user_upn": "a@contoso.com", "options": {"received_after": "yesterday"}}',
     "options.received_after is not an ISO 8601 date or date-time: 'yesterday'"),
    ('{"user_upn": "a@contoso.com", "options": {"folders": []}}', "options.folders must be a non-empty list of folder names"),
    ('{"user_upn": "a@contoso.com", "options": {"received_after": "2024-02-01", "received_before": "2024-01-01"}}',
     "options.received_after must be earlier than options.received_before"),
    ('{"user_upn": "a@contoso.com", "options": {"colour": "red"}}',
     "unknown option(s): colour; known: folders, received_after, received_before, include_attachments, body_format"),
])
def test_bad_start_bodies_are_400_and_create_nothing(stack, body, message):
    connection = stack.new_connection()
    resp = stack.http.post(stack.url(f"emails/extract/start/{connection}"), data=body,
                           headers={"Content-Type": "application/json"})
    assert _error(resp, 400, "invalid_request") == message
    assert stack.get(f"emails/extract/status/{connection}").status_code == 404


@pytest.mark.parametrize("connection, message", [
    (quote("a#b", safe=""), "connection_id must not contain '/', '\\', '#', '?' or control characters"),
    (quote("a?b", safe=""), "connection_id must not contain '/', '\\', '#', '?' or control characters"),
    ("x" * 257, "connection_id must be at most 256 characters"),
    ("batch_mine", "connection_id must not start with 'batch_' (reserved for batches)"),
])
def test_invalid_connection_ids_are_400(stack, connection, message):
    resp = stack.post(f"emails/extract/start/{connection}", {"user_upn": "alice@contoso.com"})
    assert _error(resp, 400, "invalid_request") == message


def test_unknown_connection_is_404_on_every_route(stack):
    for method, action in [("GET", "status"), ("GET", "result"), ("POST", "pause"), ("POST", "continue"),
                           ("POST", "cancel")]:
        resp = stack.http.request(method, stack.url(f"emails/extract/{action}/never-started"))
        assert _error(resp, 404, "not_found") == "no extraction run for connection 'never-started'"


def test_result_paging_parameters_are_validated(stack):
    connection = stack.start("bob@contoso.com")
    stack.wait(connection)
    for limit in ("0", "1001", "abc"):
        resp = stack.get(f"emails/extract/result/{connection}", params={"limit": limit})
        assert _error(resp, 400, "invalid_request") == "limit must be an integer from 1 to 1000"
    resp = stack.get(f"emails/extract/result/{connection}", params={"cursor": "garbage!"})
    assert _error(resp, 400, "invalid_request") == "cursor is not a cursor this service returned"
    first = stack.get(f"emails/extract/result/{connection}", params={"limit": 7}).json()
    assert len(first["emails"]) == 7 and first["next_cursor"]


@pytest.mark.parametrize("body, message", [
    ('{"user_upns": []}', "user_upns must be a non-empty list of email addresses"),
    ('{"user_upns": "a@contoso.com"}', "user_upns must be a non-empty list of email addresses"),
    ('{"user_upns": ["a@contoso.com", "A@Contoso.com"]}', "user_upns lists these more than once: A@Contoso.com, a@contoso.com"),
    ('{"user_upns": ["a@contoso.com", "nope"]}', "user_upns[1] is not an email address: 'nope'"),
    (json.dumps({"user_upns": [f"u{i}@contoso.com" for i in range(1001)]}),
     "user_upns has 1001 entries; at most 1000 per batch"),
])
def test_bad_batch_bodies_are_400(stack, body, message):
    resp = stack.http.post(stack.url("emails/extract/batch/start"), data=body)
    assert _error(resp, 400, "invalid_request") == message


def test_unknown_and_malformed_batch_ids(stack):
    assert _error(stack.get("emails/extract/batch/status/batch_0123456789abcdef0123"), 404, "not_found") == \
        "no batch 'batch_0123456789abcdef0123'"
    assert "is not a batch id" in _error(stack.get("emails/extract/batch/status/nope"), 400, "invalid_request")
    assert _error(stack.post("emails/extract/batch/pause/batch_0123456789abcdef0123"), 404, "not_found")


def test_missing_credentials_without_settings_fallback_is_400_naming_them(stack_factory):
    stack = stack_factory(env={"TENANT_ID": "", "OUTLOOK_CLIENT_ID": "", "OUTLOOK_CLIENT_SECRET": ""})
    resp = stack.post("emails/extract/start/c1", {"user_upn": "alice@contoso.com"})
    message = _error(resp, 400, "missing_credentials")
    for name in ("tenant_id (or setting TENANT_ID)", "outlook_client_id (or setting OUTLOOK_CLIENT_ID)",
                 "outlook_client_secret (or setting OUTLOOK_CLIENT_SECRET)"):
        assert name in message
    partial = stack.post("emails/extract/start/c1", {"user_upn": "alice@contoso.com",
                                                     "config": {"tenant_id": "t", "outlook_client_id": "c"}})
    assert _error(partial, 400, "missing_credentials") == \
        "missing credentials: outlook_client_secret (or setting OUTLOOK_CLIENT_SECRET)"


def test_request_secret_without_encryption_key_is_refused(stack_factory):
    stack = stack_factory(env={"CREDENTIAL_ENCRYPTION_KEY": ""})
    resp = stack.post("emails/extract/start/c1", {"user_upn": "alice@contoso.com", "config": {
        "tenant_id": stack.sim.tenant_id, "outlook_client_id": "other", "outlook_client_secret": "s"}})
    assert "CREDENTIAL_ENCRYPTION_KEY" in _error(resp, 503, "encryption_key_missing")


def test_oversized_credentials_are_400_before_anything_is_stored(stack):
    resp = stack.post("emails/extract/start/c-long", {"user_upn": "alice@contoso.com", "config": {
        "tenant_id": stack.sim.tenant_id, "outlook_client_id": "app", "outlook_client_secret": "s" * 1025}})
    assert _error(resp, 400, "invalid_request") == "outlook_client_secret must be at most 1024 characters"
    assert stack.get("emails/extract/status/c-long").status_code == 404


def test_graph_errors_end_the_run_failed_with_graphs_reason(stack):
    unknown = stack.wait(stack.start("ghost@contoso.com"))
    assert unknown["status"] == "failed" and unknown["error"]["code"] == "mailbox_not_found"
    stack.sim.register_app(stack.sim.tenant_id, "second-app", secret="right-secret")
    bad_secret = stack.wait(stack.start("alice@contoso.com", config={
        "tenant_id": stack.sim.tenant_id, "outlook_client_id": "second-app", "outlook_client_secret": "wrong"}))
    assert bad_secret["status"] == "failed" and bad_secret["error"]["code"] == "authentication_failed"
    assert "AADSTS7000215" in bad_secret["error"]["message"]
    assert "wrong" not in json.dumps(bad_secret)
