"""Body packs against real Azurite: one upload per page, every body read back exactly by range,
idempotent re-stores, and purged bodies erased from their packs."""
from __future__ import annotations

import uuid

import pytest

from mailextract.extraction.mail_writer import MailWriter
from mailextract.jobs import ExtractionOptions
from mailextract.settings import Settings
from mailextract.storage.mail_blobs import MailBlobs, pack_folder
from mailextract.storage.mail_index import MailIndex

BODIES = ["<p>Hello</p>", "", "<p>Grüße 📬 aus Köln</p>" * 50, "<p>Plain ASCII tail</p>"]
STREAM = {"upn": "alice@contoso.com", "path": "Inbox", "id": "folder-inbox"}


@pytest.fixture
def store(storage_connection_string):
    settings = Settings.from_mapping({"AzureWebJobsStorage": storage_connection_string})
    index, blobs = MailIndex(settings), MailBlobs(settings)
    return MailWriter(index, blobs), index, blobs, f"packs-{uuid.uuid4().hex[:10]}"


def _page(bodies: list[str], prefix: str = "m") -> list[dict]:
    return [{"id": f"{prefix}{i}", "subject": f"s{i}", "body": {"contentType": "html", "content": body}}
            for i, body in enumerate(bodies)]


def _bodies(index: MailIndex, blobs: MailBlobs, connection: str) -> dict[str, str]:
    rows, _ = index.page(connection, 1000, None)
    return {r["id"]: blobs.read_range(r["body_blob"], r["body_offset"], r["body_length"]).decode("utf-8")
            for r in rows}


def test_a_page_is_one_pack_and_each_body_reads_back_exactly(store):
    writer, index, blobs, connection = store
    records = writer.store(None, connection, STREAM, _page(BODIES), ExtractionOptions(), "run-1", None)
    assert blobs.names(pack_folder(connection)) == [records[0]["body_blob"]]
    assert _bodies(index, blobs, connection) == {f"m{i}": body for i, body in enumerate(BODIES)}


def test_storing_the_same_page_again_writes_the_same_pack_and_rows(store):
    writer, index, blobs, connection = store
    for _ in range(2):
        writer.store(None, connection, STREAM, _page(BODIES), ExtractionOptions(), "run-1", None)
    assert len(blobs.names(pack_folder(connection))) == 1
    assert _bodies(index, blobs, connection) == {f"m{i}": body for i, body in enumerate(BODIES)}


def test_compaction_erases_purged_and_superseded_bodies_and_keeps_the_rest(store):
    writer, index, blobs, connection = store
    first = writer.store(None, connection, STREAM, _page(BODIES), ExtractionOptions(), "run-1", None)
    old_pack = first[0]["body_blob"]
    # m3 changed and was stored again in a later page: its old copy is superseded
    writer.store(None, connection, STREAM, _page(["x", "y", "z", "<p>Edited tail</p>"])[3:], ExtractionOptions(),
                 "run-2", None)
    # m0 was purged: its row is gone
    index.delete(connection, index.current(connection, ["m0"]))
    # a pack nobody points at any more
    orphan = writer.store(None, connection, STREAM, _page(["<p>orphan</p>"], prefix="o"), ExtractionOptions(),
                          "run-3", None)[0]["body_blob"]
    index.delete(connection, index.current(connection, ["o0"]))

    assert writer.compact_bodies(connection) == 2
    assert orphan not in blobs.names(pack_folder(connection))
    packed = blobs.read_bytes(old_pack).decode("utf-8")
    assert "Hello" not in packed and "Plain ASCII tail" not in packed
    assert _bodies(index, blobs, connection) == {"m1": "", "m2": BODIES[2], "m3": "<p>Edited tail</p>"}
    assert writer.compact_bodies(connection) == 0  # nothing left to erase


def test_an_empty_page_writes_nothing(store):
    writer, index, blobs, connection = store
    assert writer.store(None, connection, STREAM, [], ExtractionOptions(), "run-1", None) == []
    assert blobs.names(pack_folder(connection)) == [] and index.page(connection, 10, None)[0] == []
