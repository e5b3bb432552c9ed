"""Retiring rows (delta `@removed`, sweeps) while another stream stores the same message, against
real Azurite: a row changed since it was read is read again, never marked deleted blindly."""
from __future__ import annotations

import uuid

import pytest

from mailextract.extraction.mail_writer import MailWriter
from mailextract.jobs import ExtractionOptions
from mailextract.settings import Settings
from mailextract.storage.mail_blobs import MailBlobs
from mailextract.storage.mail_index import MailIndex

INBOX = {"upn": "alice@contoso.com", "path": "Inbox", "id": "folder-inbox"}
ARCHIVE = {"upn": "alice@contoso.com", "path": "Archive", "id": "folder-archive"}


class MovedWhileRead(MailIndex):
    """The first read of rows returns them as they were, after `meanwhile` changed them in storage."""

    def __init__(self, settings, meanwhile):
        super().__init__(settings)
        self.meanwhile = meanwhile

    def _stale(self, rows):
        if self.meanwhile:
            run, self.meanwhile = self.meanwhile, None
            run()
        return rows

    def current(self, connection_id, message_ids):
        return self._stale(super().current(connection_id, message_ids))

    def in_folder(self, connection_id, user_upn, folder_id):
        return self._stale(list(super().in_folder(connection_id, user_upn, folder_id)))


@pytest.fixture
def settings(storage_connection_string):
    return Settings.from_mapping({"AzureWebJobsStorage": storage_connection_string})


def _message(message_id: str, folder: dict) -> dict:
    return {"id": message_id, "subject": "s", "parentFolderId": folder["id"], "body": {"content": "<p>b</p>"}}


def _setup(settings, connection):
    plain = MailWriter(MailIndex(settings), MailBlobs(settings))
    plain.store(None, connection, INBOX, [_message("m1", INBOX), _message("m2", INBOX)], ExtractionOptions(),
                "run-1", "round-1")
    return lambda: plain.store(None, connection, ARCHIVE, [_message("m1", ARCHIVE)], ExtractionOptions(),
                               "run-2", "round-2")


@pytest.mark.parametrize("purge", [False, True])
def test_a_removal_read_before_the_message_was_stored_in_its_new_folder_leaves_it_live(settings, purge):
    connection = f"race-{uuid.uuid4().hex[:10]}"
    moved_to_archive = _setup(settings, connection)
    index = MovedWhileRead(settings, moved_to_archive)
    writer = MailWriter(index, MailBlobs(settings))
    # Inbox's delta says m1 and m2 left Inbox; m1 was stored in Archive between the read and the write
    assert writer.remove(connection, INBOX, ["m1", "m2"], purge) == 1
    m1, m2 = MailIndex(settings).get(connection, "m1"), MailIndex(settings).get(connection, "m2")
    assert m1["folder_id"] == "folder-archive" and not m1.get("deleted_at")
    assert m2 is None if purge else m2["deleted_at"]


def test_a_sweep_read_before_a_message_moved_in_leaves_it_live(settings):
    connection = f"race-{uuid.uuid4().hex[:10]}"
    moved_to_archive = _setup(settings, connection)
    writer = MailWriter(MovedWhileRead(settings, moved_to_archive), MailBlobs(settings))
    # a new round of Inbox saw neither message: both are swept, except m1, stored in Archive meanwhile
    assert writer.sweep(connection, INBOX, "round-3", purge=False) == 1
    assert not MailIndex(settings).get(connection, "m1").get("deleted_at")
    assert MailIndex(settings).get(connection, "m2")["deleted_at"]
