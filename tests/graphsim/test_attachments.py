"""Attachments: metadata, contentBytes only up to 3 MB, exact raw bytes through $value, inline and item ones."""
from __future__ import annotations

import base64
import hashlib

from .helpers import IMMUTABLE, graph_error, users_url

ALICE = "alice@contoso.com"
LIMIT = 3 * 1024 * 1024


def _find(sim, predicate):
    mbx = sim.mailbox(ALICE)
    for m in mbx.messages(fields=["id"]):
        for a in mbx.attachments(m["id"]):
            if predicate(a):
                return m["id"], a
    raise AssertionError("no such attachment in the generated mailbox")


def test_large_file_attachment_has_no_content_bytes_but_exact_value(graphsim):
    s = graphsim.session()
    base = users_url(graphsim, ALICE)
    message_id, big = _find(graphsim, lambda a: a["size"] > LIMIT)
    listing = s.get(f"{base}/messages/{message_id}/attachments", headers=IMMUTABLE).json()
    [item] = [a for a in listing["value"] if a["id"] == big["id"]]
    assert item["@odata.type"] == "#microsoft.graph.fileAttachment"
    assert "contentBytes" not in item
    assert item["size"] == big["size"]
    message = s.get(f"{base}/messages/{message_id}", headers=IMMUTABLE).json()
    assert message["hasAttachments"] is True

    raw = s.get(f"{base}/messages/{message_id}/attachments/{big['id']}/$value")
    assert raw.status_code == 200
    assert int(raw.headers["Content-Length"]) == big["size"]
    assert len(raw.content) == big["size"]
    assert raw.headers["Content-Type"] == big["contentType"]
    again = s.get(f"{base}/messages/{message_id}/attachments/{big['id']}/$value")
    assert hashlib.sha256(again.content).digest() == hashlib.sha256(raw.content).digest()


def test_small_file_attachment_content_bytes_equal_value(graphsim):
    s = graphsim.session()
    base = users_url(graphsim, ALICE)
    message_id, small = _find(graphsim, lambda a: a["@odata.type"] == "#microsoft.graph.fileAttachment"
                              and 1000 < a["size"] <= LIMIT and not a["isInline"])
    single = s.get(f"{base}/messages/{message_id}/attachments/{small['id']}").json()
    data = base64.b64decode(single["contentBytes"])
    assert len(data) == small["size"] == single["size"]
    assert s.get(f"{base}/messages/{message_id}/attachments/{small['id']}/$value").content == data
    selected = s.get(f"{base}/messages/{message_id}/attachments?$select=name,size").json()["value"]
    assert all("contentBytes" not in a and set(a) >= {"id", "name", "size"} for a in selected)


def test_added_message_with_explicit_attachments(graphsim):
    s = graphsim.session()
    base = users_url(graphsim, ALICE)
    mbx = graphsim.mailbox(ALICE)
    payload = "Prix: 12,50 €\n".encode() * 100
    message_id = mbx.add_message(folder="inbox", subject="Pièces jointes", attachments=[
        {"name": "reçu.txt", "contentType": "text/plain", "content": payload},
        {"name": "scan.pdf", "contentType": "application/pdf", "size": LIMIT + 1},
    ])
    listing = s.get(f"{base}/messages/{message_id}/attachments").json()["value"]
    assert [(a["name"], a["size"], "contentBytes" in a) for a in listing] == [
        ("reçu.txt", len(payload), True), ("scan.pdf", LIMIT + 1, False)]
    assert base64.b64decode(listing[0]["contentBytes"]) == payload
    assert len(s.get(f"{base}/messages/{message_id}/attachments/{listing[1]['id']}/$value").content) == LIMIT + 1


def test_inline_and_item_attachments(graphsim_factory):
    sim = graphsim_factory(mailboxes={"dave@contoso.com": 600}, seed=2)
    mbx = sim.mailbox("dave@contoso.com")
    s = sim.session()
    base = users_url(sim, "dave@contoso.com")
    inline = item = None
    for m in mbx.messages(fields=["id"]):
        for a in mbx.attachments(m["id"]):
            if a["isInline"] and inline is None:
                inline = (m["id"], a)
            if a["@odata.type"] == "#microsoft.graph.itemAttachment" and item is None:
                item = (m["id"], a)
    assert inline and item
    message = s.get(f"{base}/messages/{inline[0]}", headers=IMMUTABLE).json()
    assert f"cid:{inline[1]['contentId']}" in message["body"]["content"]
    value = s.get(f"{base}/messages/{item[0]}/attachments/{item[1]['id']}/$value")
    assert len(value.content) == item[1]["size"]
    assert value.content.startswith(b"From: ")


def test_unknown_attachment_is_404(graphsim):
    s = graphsim.session()
    base = users_url(graphsim, ALICE)
    message_id, attachment = _find(graphsim, lambda a: True)
    other_message = next(m["id"] for m in graphsim.mailbox(ALICE).messages(fields=["id"]) if m["id"] != message_id)
    response = s.get(f"{base}/messages/{other_message}/attachments/{attachment['id']}")
    assert response.status_code == 404
    assert graph_error(response)[0] == "ErrorItemNotFound"
