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
