"""Attachments over 3 MB and full MIME, streamed from graphsim to files."""

from __future__ import annotations

import email
import email.policy
import hashlib
import os

ALICE = "alice@contoso.com"


def test_attachment_over_3mb_is_downloaded_exactly(graph_env, tmp_path):
    mailbox = graph_env.sim.mailbox(ALICE)
    big = os.urandom(3 * 1024 * 1024 + 123_457)
    small = b"small attachment \xe2\x9c\x93"
    message_id = mailbox.add_message(folder="inbox", subject="with a big attachment", attachments=[
        {"name": "big.bin", "content": big, "contentType": "application/octet-stream"},
        {"name": "small.txt", "content": small, "contentType": "text/plain"},
    ])
    client = graph_env.client()
    attachments = client.list_attachments(ALICE, message_id)
    assert [(a.name, a.size, a.kind) for a in attachments] == [
        ("big.bin", len(big), "file"), ("small.txt", len(small), "file")]
    assert {a.id for a in attachments} == {a["id"] for a in mailbox.attachments(message_id)}

    target = tmp_path / "big.bin"
    with open(target, "wb") as sink:
        written = client.download_attachment(ALICE, message_id, attachments[0].id, sink)
    assert written == len(big) == target.stat().st_size
    assert hashlib.sha256(target.read_bytes()).hexdigest() == hashlib.sha256(big).hexdigest()

    with open(tmp_path / "small.txt", "wb") as sink:
        assert client.download_attachment(ALICE, message_id, attachments[1].id, sink) == len(small)
    assert (tmp_path / "small.txt").read_bytes() == small


def test_full_mime_is_streamed_to_a_file(graph_env, tmp_path):
    mailbox = graph_env.sim.mailbox(ALICE)
    payload = os.urandom(3_500_000)
    message_id = mailbox.add_message(folder="inbox", subject="mime please", attachments=[
        {"name": "data.bin", "content": payload}])
    target = tmp_path / "message.eml"
    with open(target, "wb") as sink:
        written = graph_env.client().download_mime(ALICE, message_id, sink)
    assert written == target.stat().st_size > len(payload) * 4 // 3  # base64 inside MIME
    with open(target, "rb") as f:
        parsed = email.message_from_binary_file(f, policy=email.policy.default)
    assert parsed["Subject"] == "mime please"
    (part,) = [p for p in parsed.iter_attachments() if p.get_filename() == "data.bin"]
    assert part.get_payload(decode=True) == payload
