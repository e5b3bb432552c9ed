"""Cursors: JSON round trip, links kept verbatim, preferences carried, no secrets."""

import json
from datetime import datetime, timezone

import pytest

from mailextract.errors import InvalidRequest
from mailextract.graph import cursors

UTC = timezone.utc


def test_messages_start_cursor_is_plain_json():
    c = cursors.messages_cursor("inbox", received_after=datetime(2024, 1, 1, tzinfo=UTC),
                                received_before=datetime(2024, 3, 1, tzinfo=UTC), select=["id", "subject"],
                                top=50, orderby="receivedDateTime desc", body_type="text")
    assert c == {
        "v": 1, "kind": "messages", "folder_id": "inbox", "body_type": "text", "next_link": None,
        "query": {"$select": "id,subject", "$top": "50",
                  "$filter": "receivedDateTime ge 2024-01-01T00:00:00Z and receivedDateTime lt 2024-03-01T00:00:00Z",
                  "$orderby": "receivedDateTime desc"},
    }
    assert json.loads(json.dumps(c)) == c


def test_next_link_is_kept_verbatim_and_preferences_carried():
    start = cursors.messages_cursor(None, select=["id"], body_type="text")
    link = "https://graph.microsoft.com/v1.0/users/a@b.c/messages?%24select=id&%24top=10&%24skip=10"
    nxt = cursors.with_next_link(start, link)
    assert nxt["next_link"] == link and nxt["body_type"] == "text" and nxt["query"] == {}
    assert cursors.validate(json.loads(json.dumps(nxt)), "messages") == nxt
    assert start["next_link"] is None  # the start cursor is not modified


def test_delta_cursors():
    fresh = cursors.delta_cursor("inbox", received_after=datetime(2024, 1, 1, tzinfo=UTC), select=["id"],
                                 page_size=25, body_type="text")
    assert fresh == {"v": 1, "kind": "delta", "folder_id": "inbox", "body_type": "text", "page_size": 25,
                     "query": {"$select": "id", "$filter": "receivedDateTime ge 2024-01-01T00:00:00Z"},
                     "next_link": None, "delta_link": None}
    saved = "https://graph.microsoft.com/v1.0/users/a/mailFolders/inbox/messages/delta?$deltatoken=abc"
    resumed = cursors.delta_cursor("inbox", delta_link=saved, page_size=25)
    assert resumed["delta_link"] == saved and resumed["query"] == {}
    nxt = cursors.with_next_link(resumed, saved.replace("deltatoken", "skiptoken"))
    assert nxt["delta_link"] is None and nxt["next_link"].endswith("$skiptoken=abc")
    with pytest.raises(InvalidRequest):
        cursors.delta_cursor("inbox", delta_link="http://evil.example/x")


@pytest.mark.parametrize("mutate, kind", [
    (lambda c: c.update(v=2), "messages"),
    (lambda c: c.update(kind="delta"), "messages"),
    (lambda c: c.update(body_type="pdf"), "messages"),
    (lambda c: c.update(query={"$top": 5}), "messages"),
    (lambda c: c.update(next_link=["x"]), "messages"),
])
def test_validate_rejects_malformed_cursors(mutate, kind):
    c = cursors.messages_cursor()
    mutate(c)
    with pytest.raises(InvalidRequest):
        cursors.validate(c, kind)


def test_validate_rejects_non_dicts():
    with pytest.raises(InvalidRequest):
        cursors.validate("not a cursor", "messages")
