"""Queries over stored mail: every filter, search, paging, one message with body, attachments."""
from __future__ import annotations

import pytest

UPN = "gina@contoso.com"


@pytest.fixture
def extracted(stack_factory):
    """One extraction with attachments stored, and the stored emails as the result route gives them."""
    stack = stack_factory(mailboxes={UPN: 60}, big_attachment_every=20, attachment_rate=0.4)
    connection = stack.start(UPN, options={"include_attachments": True})
    assert stack.wait(connection, timeout=120)["status"] == "completed"
    return stack, connection, stack.emails(connection)


def _query(stack, **params) -> list[dict]:
    return stack.collect("emails/messages", "messages", **params)


def _ids(items) -> list[str]:
    return sorted(i["id"] for i in items)


def test_filters_select_exactly_the_matching_messages(extracted):
    stack, connection, emails = extracted
    base = {"connection_id": connection}
    assert _ids(_query(stack, **base)) == _ids(emails)
    assert all(m["connection_id"] == connection for m in _query(stack, **base))
    assert _ids(_query(stack, **base, user_upn=UPN)) == _ids(emails)
    assert _query(stack, **base, user_upn="someone.else@contoso.com") == []
    for flag in ("is_read", "has_attachments"):
        for value in (True, False):
            expected = [e for e in emails if e[flag] is value]
            assert _ids(_query(stack, **base, **{flag: str(value).lower()})) == _ids(expected)
    assert _ids(_query(stack, **base, folder="Inbox")) == _ids(e for e in emails if e["folder"] == "Inbox")
    sender = emails[0]["from"]["address"]
    assert _ids(_query(stack, **base, **{"from": sender.upper()})) == \
        _ids(e for e in emails if e["from"]["address"].lower() == sender.lower())
    received = sorted(e["received_at"] for e in emails)
    after, before = received[10], received[40]
    assert _ids(_query(stack, **base, received_after=after, received_before=before)) == \
        _ids(e for e in emails if after <= e["received_at"] < before)


def test_search_over_subject_sender_and_preview_with_paging(extracted):
    stack, connection, emails = extracted
    word = max((w for e in emails for w in e["subject"].split() if len(w) > 4),
               key=lambda w: sum(w.casefold() in e["subject"].casefold() for e in emails))
    expected = [e for e in emails if any(word.casefold() in (text or "").casefold() for text in
                                         (e["subject"], e["from"]["address"], e["from"]["name"], e["preview"]))]
    assert len(expected) > 1
    paged = _query(stack, connection_id=connection, search=word, limit=1)
    assert _ids(paged) == _ids(expected) and len(paged) == len({m["id"] for m in paged})


def test_parameters_cannot_inject_odata(extracted):
    stack, connection, emails = extracted
    for value in ("Inbox' or PartitionKey ne '", "x' or true or 'a' eq 'a"):
        assert _query(stack, connection_id=connection, folder=value) == []
    resp = stack.get("emails/messages", params={"connection_id": "c' or PartitionKey ne '"})
    assert resp.status_code == 200 and resp.json()["messages"] == []


@pytest.mark.parametrize("params, message", [
    ({"is_read": "maybe"}, "is_read must be true or false"),
    ({"limit": "0"}, "limit must be an integer from 1 to 1000"),
    ({"received_after": "last week"}, "options.received_after is not an ISO 8601"),
    ({"cursor": "bm9wZQ"}, "cursor is not a cursor this service returned"),
    ({"sort": "subject"}, "unknown parameter(s): sort"),
    ({"from": "not an address"}, "from is not an email address"),
    ({"search": " "}, "search must be 1 to 200 characters"),
    ({"received_after": "0001-01-01T00:00:00+01:00"}, "received_after is outside the dates that can be stored"),
    ({"received_before": "9999-12-31T23:59:59-01:00"}, "received_before is outside the dates that can be stored"),
])
def test_bad_query_parameters_are_400(stack, params, message):
    resp = stack.get("emails/messages", params=params)
    assert resp.status_code == 400 and resp.json()["error"]["message"].startswith(message[:30])


def test_one_message_with_its_body(extracted):
    stack, connection, emails = extracted
    email = emails[3]
    resp = stack.get(f"emails/messages/{email['id']}", params={"connection_id": connection})
    assert resp.status_code == 200
    body = resp.json()
    assert {k: body[k] for k in email} == email and body["connection_id"] == connection
    assert body["body"] == {"format": "html",
                            "content": stack.sim.mailbox(UPN).message(email["id"])["body"]["content"]}
    missing = stack.get(f"emails/messages/{email['id']}")
    assert missing.status_code == 400 and missing.json()["error"]["message"] == "connection_id is required"
    unknown = stack.get("emails/messages/nope", params={"connection_id": connection})
    assert unknown.status_code == 404


def test_attachment_download_gives_the_stored_bytes(extracted):
    stack, connection, emails = extracted
    with_files = [(e, a) for e in emails for a in e["attachments"] if a["blob"]]
    assert with_files
    email, attachment = max(with_files, key=lambda pair: pair[1]["size"])
    resp = stack.get(f"emails/messages/{email['id']}/attachments/{attachment['id']}",
                     params={"connection_id": connection})
    assert resp.status_code == 200
    assert len(resp.content) == attachment["size"] == next(
        a["size"] for a in stack.sim.mailbox(UPN).attachments(email["id"]) if a["id"] == attachment["id"])
    assert resp.headers["Content-Type"].startswith(attachment["content_type"] or "application/octet-stream")
    assert "attachment; filename*=UTF-8''" in resp.headers["Content-Disposition"]
    gone = stack.get(f"emails/messages/{email['id']}/attachments/nope", params={"connection_id": connection})
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"


def test_function_key_query_parameter_is_not_a_filter(extracted):
    stack, connection, emails = extracted
    with_code = stack.get("emails/messages", params={"connection_id": connection, "code": "a-key", "limit": 1000})
    assert with_code.status_code == 200 and len(with_code.json()["messages"]) == len(emails)
