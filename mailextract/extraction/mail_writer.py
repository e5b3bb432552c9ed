"""Writing what Graph returned into the store, in the order that keeps it consistent.

Bodies (one pack per page, see storage.mail_blobs) and attachments go to Blob storage before the
index rows that point at them. Removals from a delta (`@removed`) mark a row deleted only while
the row still says it is in that folder: a message moved from A to B shows as removed in A and new
in B, and whichever of the two is applied first, the row ends in B, not deleted: a row is marked
deleted only if it is unchanged since it was read (its ETag), else it is read and judged again.
After a full round of a folder, rows of that folder the round did not see are swept (marked
deleted) the same way: that is what makes a resync after an expired delta state converge to
exactly the mailbox.
"""
from __future__ import annotations

import tempfile
from collections import defaultdict
from typing import Any, Callable, Iterable

from azure.data.tables import TableTransactionError

from mailextract.graph import GraphClient
from mailextract.jobs import ExtractionOptions, utcnow_iso
from mailextract.storage import table_batch
from mailextract.storage.keys import encode
from mailextract.storage.mail_blobs import MailBlobs, attachment_blob_name, pack_folder
from mailextract.storage.mail_index import MailIndex

CONFLICT_ATTEMPTS = 5


def message_record(message: dict[str, Any], *, user_upn: str, folder_path: str, run_id: str, body_blob: str,
                   body_offset: int, body_length: int, body_format: str,
                   attachments: list[dict[str, Any]]) -> dict[str, Any]:
    """The index row of a message: what the result and query routes answer with."""
    sender = (message.get("from") or message.get("sender") or {}).get("emailAddress") or {}
    body = message.get("body") or {}
    return {
        "id": message["id"],
        "user_upn": user_upn,
        "subject": message.get("subject") or "",
        "from_address": sender.get("address") or "",
        "from_name": sender.get("name") or "",
        "to": [r.get("emailAddress", {}).get("address") for r in message.get("toRecipients") or []],
        "cc": [r.get("emailAddress", {}).get("address") for r in message.get("ccRecipients") or []],
        "received_at": message.get("receivedDateTime"),
        "sent_at": message.get("sentDateTime"),
        "folder": folder_path,
        "folder_id": message.get("parentFolderId"),
        "has_attachments": bool(message.get("hasAttachments")),
        "is_read": bool(message.get("isRead")),
        "importance": message.get("importance"),
        "conversation_id": message.get("conversationId"),
        "internet_message_id": message.get("internetMessageId"),
        "preview": (message.get("bodyPreview") or "")[:512],
        "categories": message.get("categories") or [],
        "body_blob": body_blob,
        "body_offset": body_offset,
        "body_length": body_length,
        "body_format": body_format,
        "body_chars": len(body.get("content") or ""),
        "attachments": attachments,
        "run_id": run_id,
        "extracted_at": utcnow_iso(),
    }


class MailWriter:
    def __init__(self, index: MailIndex, blobs: MailBlobs):
        self.index = index
        self.blobs = blobs

    def store(self, client: GraphClient, connection_id: str, stream: dict[str, Any], items: list[dict[str, Any]],
              options: ExtractionOptions, run_id: str, sync_round: str | None) -> list[dict[str, Any]]:
        """Store one page: its bodies as one pack, then its index rows (which point into the pack)."""
        if not items:  # an empty folder's page: nothing to write
            return []
        upn = stream["upn"]
        bodies = [((m.get("body") or {}).get("content") or "").encode("utf-8") for m in items]
        pack = b"".join(bodies)
        name = self.blobs.put_pack(connection_id, pack, options.body_format)
        records, offset = [], 0
        for message, body in zip(items, bodies):
            attachments = (self._store_attachments(client, connection_id, upn, message["id"])
                           if options.include_attachments and message.get("hasAttachments") else [])
            record = message_record(message, user_upn=upn, folder_path=stream["path"], run_id=run_id,
                                    body_blob=name, body_offset=offset, body_length=len(body),
                                    body_format=options.body_format, attachments=attachments)
            offset += len(body)
            if sync_round:
                record["sync_round"] = sync_round
            records.append(record)
        self.index.upsert(connection_id, records)
        return records

    def _store_attachments(self, client: GraphClient, connection_id: str, upn: str,
                           message_id: str) -> list[dict[str, Any]]:
        saved = []
        for attachment in client.list_attachments(upn, message_id):
            entry = {"id": attachment.id, "name": attachment.name, "content_type": attachment.content_type,
                     "size": attachment.size, "kind": attachment.kind, "blob": None}
            if attachment.kind == "file":
                name = attachment_blob_name(connection_id, message_id, attachment.id)
                with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as sink:
                    length = client.download_attachment(upn, message_id, attachment.id, sink)
                    sink.seek(0)
                    self.blobs.put_stream(name, sink, length, attachment.content_type, attachment.name)
                entry.update(blob=name, size=length)
            saved.append(entry)
        return saved

    def _retire(self, connection_id: str, rows: Iterable[dict[str, Any]], purge: bool,
                still: Callable[[dict[str, Any]], bool]) -> int:
        """Mark deleted (or, purging, delete) the rows that `still` picks, each only if unchanged since
        it was read: another stream may store the same message meanwhile (moved into its folder),
        and then the row is read again and picked again, or not. 100 rows per transaction, taken
        from `rows` as they come, so a folder of any size is swept in bounded memory."""
        retired, chunk = 0, []
        for row in rows:
            if still(row):
                chunk.append(row)
            if len(chunk) == table_batch.MAX_OPERATIONS:
                retired += self._retire_chunk(connection_id, chunk, purge, still)
                chunk = []
        return retired + (self._retire_chunk(connection_id, chunk, purge, still) if chunk else 0)

    def _retire_chunk(self, connection_id: str, chunk: list[dict[str, Any]], purge: bool,
                      still: Callable[[dict[str, Any]], bool]) -> int:
        for attempt in range(CONFLICT_ATTEMPTS):
            if not chunk:
                return 0
            try:
                if purge:
                    retired = self.index.delete(connection_id, chunk)
                    for row in chunk:
                        self.blobs.delete_prefix(f"{connection_id}/{encode(row['id'])}/")
                    return retired
                return self.index.mark_deleted(connection_id, chunk, utcnow_iso())
            except TableTransactionError as exc:
                if exc.status_code != 412 or attempt == CONFLICT_ATTEMPTS - 1:
                    raise
                chunk = [r for r in self.index.current(connection_id, [r["id"] for r in chunk]) if still(r)]
        return 0

    def remove(self, connection_id: str, stream: dict[str, Any], message_ids: list[str], purge: bool) -> int:
        """Apply `@removed` items of this folder's delta."""
        return self._retire(connection_id, self.index.current(connection_id, message_ids), purge,
                            lambda r: r.get("folder_id") == stream["id"] and not r.get("deleted_at"))

    def sweep(self, connection_id: str, stream: dict[str, Any], sync_round: str, purge: bool) -> int:
        """After a full round: rows of this folder the round did not see no longer exist."""
        return self._retire(connection_id, self.index.in_folder(connection_id, stream["upn"], stream["id"]), purge,
                            lambda r: (r.get("folder_id") == stream["id"] and r.get("sync_round") != sync_round
                                       and not r.get("deleted_at")))

    def retire_folder(self, connection_id: str, upn: str, folder_id: str, purge: bool) -> int:
        """A folder the mailbox no longer has: its messages are gone with it."""
        return self._retire(connection_id, self.index.in_folder(connection_id, upn, folder_id), purge,
                            lambda r: r.get("folder_id") == folder_id and not r.get("deleted_at"))

    def compact_bodies(self, connection_id: str) -> int:
        """Erase from the packs every body no index row points at; delete packs nobody points at.

        Purged messages lose their rows first; their bytes (and older copies of messages stored
        again since) stay in packs until this runs. It reads the partition's body locations once,
        so it is called at the end of a run that purged something, when no page is in flight.
        Returns how many packs changed.
        """
        live: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for blob, offset, length in self.index.body_locations(connection_id):
            live[blob].append((offset, length))
        changed = 0
        for name in self.blobs.names(pack_folder(connection_id)):
            if name not in live:
                self.blobs.delete(name)
                changed += 1
            elif self.blobs.keep_only(name, live[name]):
                changed += 1
        return changed
