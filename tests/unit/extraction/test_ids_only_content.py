"""Rounds of an ids-only deltaLink (a split folder's mark took it) fetch each message by id."""
from __future__ import annotations

import pytest

from mailextract.errors import GraphError, MailboxNotFound
from mailextract.extraction.pages import MESSAGE_SELECT, _content_of as content_of
from mailextract.jobs import ExtractionOptions

STREAM = {"upn": "a@contoso.com", "id": "inbox", "path": "Inbox"}


class FakeClient:
    """Our GraphClient's get_message: a message by id, or the error Graph would answer."""

    def __init__(self, errors: dict[str, Exception]):
        self.errors, self.asked = errors, []

    def get_message(self, upn, message_id, *, select, body_type):
        self.asked.append((upn, message_id, tuple(select), body_type))
        if message_id in self.errors:
            raise self.errors[message_id]
        return {"id": message_id, "subject": f"subject of {message_id}"}


def test_each_message_is_fetched_with_content_and_one_deleted_meanwhile_is_left_out():
    client = FakeClient({"m2": GraphError(status=404, graph_code="ErrorItemNotFound")})
    items = [{"id": "m1"}, {"id": "m2"}, {"id": "m3"}]
    fetched = content_of(client, STREAM, items, ExtractionOptions(body_format="text"))
    assert fetched == [{"id": "m1", "subject": "subject of m1"}, {"id": "m3", "subject": "subject of m3"}]
    assert sorted(client.asked) == [("a@contoso.com", m, MESSAGE_SELECT, "text") for m in ("m1", "m2", "m3")]


@pytest.mark.parametrize("error", [MailboxNotFound(status=404, graph_code="ErrorInvalidUser"),
                                   GraphError(status=403, graph_code="ErrorAccessDenied")])
def test_a_missing_mailbox_or_another_error_is_not_taken_for_a_deleted_message(error):
    with pytest.raises(type(error)):
        content_of(FakeClient({"m1": error}), STREAM, [{"id": "m1"}], ExtractionOptions())
