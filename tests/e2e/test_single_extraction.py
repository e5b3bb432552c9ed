"""Single-mailbox extraction over real HTTP: start, status, result, and the exact message set."""
from __future__ import annotations

from tests.e2e.conftest import truth_ids


def test_extracts_exactly_the_mailbox(stack):
    connection = stack.start("alice@contoso.com")
    final = stack.wait(connection)
    assert final["status"] == "completed", final
    emails = stack.emails(connection, limit=40)
    ids = [e["id"] for e in emails]
    assert len(ids) == len(set(ids))
    assert set(ids) == truth_ids(stack.sim, "alice@contoso.com")
    assert final["progress"]["messages_extracted"] == len(ids)
    assert final["progress"]["folders_done"] == final["progress"]["folders_total"] > 0


def test_status_url_is_percent_encoded_and_works(stack):
    connection = "tenant a ü%41"
    resp = stack.post(f"emails/extract/start/{connection.replace('%', '%25').replace(' ', '%20')}",
                      {"user_upn": "bob@contoso.com"})
    assert resp.status_code == 202, resp.text
    url = resp.json()["status_url"]
    assert url.endswith("/api/emails/extract/status/tenant%20a%20%C3%BC%2541")
    assert stack.http.get(url).json()["connection_id"] == connection
