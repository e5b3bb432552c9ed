"""Extraction options end to end: folders, date window, attachments (incl. over 3 MB), text bodies."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from azure.storage.blob import BlobServiceClient

UPN = "dora@contoso.com"


@pytest.fixture
def blobs(storage_connection_string):
    return BlobServiceClient.from_connection_string(storage_connection_string).get_container_client("mail")


def _subtree(sim, upn: str, root_name: str) -> set[str]:
    folders = sim.mailbox(upn).folders()
    root = next(f["id"] for f in folders if f["displayName"] == root_name and f["parentFolderId"] not in
                {g["id"] for g in folders})
    chosen, grew = {root}, True
    while grew:
        grew = False
        for f in folders:
            if f["parentFolderId"] in chosen and f["id"] not in chosen:
                chosen.add(f["id"])
                grew = True
    return chosen


def test_folder_option_takes_the_folder_and_its_subfolders(stack_factory):
    stack = stack_factory(mailboxes={UPN: 200})
    connection = stack.start(UPN, options={"folders": ["Inbox"]})
    assert stack.wait(connection)["status"] == "completed"
    inbox = _subtree(stack.sim, UPN, "Inbox")
    expected = {m["id"] for m in stack.sim.mailbox(UPN).messages(fields=["id", "parentFolderId"])
                if m["parentFolderId"] in inbox}
    emails = stack.emails(connection)
    assert {e["id"] for e in emails} == expected and len(emails) == len(expected)
    assert {e["folder"].split("/")[0] for e in emails} == {"Inbox"}
    assert len(inbox) > 1  # the sample mailbox has Inbox subfolders, so this test means something


def test_unknown_folder_fails_the_run_naming_it(stack):
    connection = stack.start("alice@contoso.com", options={"folders": ["Nope"]})
    final = stack.wait(connection)
    assert final["status"] == "failed"
    assert final["error"] == {"code": "invalid_request", "message": "folder 'Nope' was not found in the mailbox"}


def test_date_window_is_half_open_after_inclusive_before_exclusive(stack_factory):
    stack = stack_factory(mailboxes={UPN: 200})
    received = sorted(m["receivedDateTime"] for m in stack.sim.mailbox(UPN).messages(fields=["id", "receivedDateTime"]))
    after, before = received[40], received[160]
    connection = stack.start(UPN, options={"received_after": after, "received_before": before})
    assert stack.wait(connection)["status"] == "completed"

    def parse(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
    expected = {m["id"] for m in stack.sim.mailbox(UPN).messages(fields=["id", "receivedDateTime"])
                if parse(after) <= parse(m["receivedDateTime"]) < parse(before)}
    assert {e["id"] for e in stack.emails(connection)} == expected


def test_attachments_are_stored_with_their_exact_sizes_including_over_3_mb(stack_factory, blobs):
    stack = stack_factory(mailboxes={UPN: 24}, big_attachment_every=6, attachment_rate=0.5)
    connection = stack.start(UPN, options={"include_attachments": True})
    final = stack.wait(connection, timeout=120)
    assert final["status"] == "completed"
    stored = 0
    big = 0
    for email in stack.emails(connection):
        truth = stack.sim.mailbox(UPN).attachments(email["id"])
        assert email["has_attachments"] == bool(truth)
        by_id = {a["id"]: a for a in email["attachments"]}
        assert set(by_id) == {a["id"] for a in truth}
        for attachment in truth:
            saved = by_id[attachment["id"]]
            if attachment["@odata.type"] == "#microsoft.graph.fileAttachment":
                assert saved["size"] == attachment["size"]
                assert blobs.get_blob_client(saved["blob"]).get_blob_properties().size == attachment["size"]
                stored += 1
                big += attachment["size"] > 3 * 1024 * 1024
    assert final["progress"]["attachments_saved"] >= stored > 0
    assert big > 0  # at least one attachment went through $value


def _stored_body(blobs, email) -> str:
    blob = blobs.get_blob_client(email["body_blob"])
    return blob.download_blob(offset=email["body_offset"], length=email["body_length"]).readall().decode("utf-8")


def test_text_body_format_stores_plain_text_bodies(stack, blobs):
    connection = stack.start("bob@contoso.com", options={"body_format": "text"})
    assert stack.wait(connection)["status"] == "completed"
    emails = stack.emails(connection)
    assert emails and all(e["body_format"] == "text" and e["body_blob"].startswith(f"{connection}/bodies/")
                          and e["body_blob"].endswith(".txt") for e in emails)
    assert blobs.get_blob_client(emails[0]["body_blob"]).get_blob_properties().content_settings.content_type.startswith(
        "text/plain")
    mailbox = stack.sim.mailbox("bob@contoso.com")
    for email in emails[:20]:
        body = _stored_body(blobs, email)
        assert "<html" not in body.lower() and body == mailbox.message(email["id"], body_type="text")["body"]["content"]


def test_each_body_is_read_back_exactly_from_its_page_pack(stack, blobs):
    connection = stack.start("bob@contoso.com")
    assert stack.wait(connection)["status"] == "completed"
    emails = stack.emails(connection)
    mailbox = stack.sim.mailbox("bob@contoso.com")
    assert {e["id"]: _stored_body(blobs, e) for e in emails} == {
        e["id"]: mailbox.message(e["id"])["body"]["content"] for e in emails}
    packs = {e["body_blob"] for e in emails}
    assert len(packs) < len(emails) / 5  # one pack per page, not one blob per message
    assert sum(blobs.get_blob_client(p).get_blob_properties().size for p in packs) == sum(
        e["body_length"] for e in emails)
