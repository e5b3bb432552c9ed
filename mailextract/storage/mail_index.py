"""The message index in Table storage: one row per message, keyed by its immutable Graph id.

  table `MailMessages`: PartitionKey connection_id (one partition per mailbox run: storage.md
  2,000 entities/s per partition), RowKey the encoded message id.
Rows are upserted (replace) 100 per entity-group transaction (storage.table_batch), so a re-run
updates in place and never duplicates. Lists (recipients, attachments) are JSON text, capped
under the 64 KiB string limit.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Iterator

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode

from mailextract import paging
from mailextract.settings import Settings
from mailextract.storage import account, table_batch
from mailextract.storage.keys import decode, encode, odata_literal

TABLE = "MailMessages"
JSON_FIELDS = ("to", "cc", "attachments", "categories")
# A string property holds 64 KiB of UTF-16 (storage.md): count UTF-16 units, not characters.
MAX_JSON_UNITS = 30_000
CURSOR_KEYS = {"PartitionKey", "RowKey"}


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _cap(value: Any) -> str:
    """JSON of a list, halved until it fits one string property."""
    text = json.dumps(value, ensure_ascii=False)
    while _utf16_units(text) > MAX_JSON_UNITS and isinstance(value, list) and value:
        value = value[: len(value) // 2]
        text = json.dumps(value, ensure_ascii=False)
    if _utf16_units(text) > MAX_JSON_UNITS:
        text = json.dumps([])
    return text


def _is_table_token(token: Any) -> bool:
    return bool(token) and set(token) <= CURSOR_KEYS and all(isinstance(v, str) for v in token.values())


def encode_page_cursor(token: dict[str, str] | None) -> str | None:
    """The result route's cursor: the Table continuation token, opaque to callers."""
    return paging.encode(token or None)


def decode_page_cursor(cursor: str | None) -> dict[str, str] | None:
    return paging.decode(cursor, _is_table_token)


class MailIndex:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings

    @property
    def table(self):
        return account.table(TABLE, self.settings)

    def upsert(self, connection_id: str, records: Iterable[dict[str, Any]]) -> int:
        entities = []
        for record in records:
            entity = {"PartitionKey": connection_id, "RowKey": encode(record["id"])}
            for name, value in record.items():
                entity[name] = _cap(value) if name in JSON_FIELDS else value
            entities.append(entity)
        for transaction in table_batch.transactions(entities):
            table_batch.upsert(self.table, transaction)
        return len(entities)

    @staticmethod
    def record(entity: Any) -> dict[str, Any]:
        """An index row as a record: JSON fields decoded, with its message id and connection id."""
        record = {k: v for k, v in entity.items() if k not in ("PartitionKey", "RowKey")}
        record["connection_id"] = entity["PartitionKey"]
        for name in JSON_FIELDS:
            if isinstance(record.get(name), str):
                record[name] = json.loads(record[name])
        record["id"] = decode(entity["RowKey"])
        return record

    def page(self, connection_id: str, limit: int, cursor: str | None,
             odata_filter: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        query = f"PartitionKey eq {odata_literal(connection_id)}"
        if odata_filter:
            query += f" and ({odata_filter})"
        pages = self.table.query_entities(query, results_per_page=limit).by_page(
            continuation_token=decode_page_cursor(cursor))
        try:
            entities = list(next(pages))
        except StopIteration:
            entities = []
        return [self.record(e) for e in entities], encode_page_cursor(pages.continuation_token)

    def is_empty(self, connection_id: str) -> bool:
        """True when the connection has no row at all (asks for one key; an empty page that
        carries a continuation token is followed, as Table storage may answer one)."""
        rows = self.table.query_entities(f"PartitionKey eq {odata_literal(connection_id)}", select=["RowKey"],
                                         results_per_page=1)
        return next(iter(rows), None) is None

    def get(self, connection_id: str, message_id: str) -> dict[str, Any] | None:
        try:
            return self.record(self.table.get_entity(connection_id, encode(message_id)))
        except ResourceNotFoundError:
            return None

    def _versioned(self, entity: Any) -> dict[str, Any]:
        return {**self.record(entity), "etag": entity.metadata.get("etag")}

    def in_folder(self, connection_id: str, user_upn: str, folder_id: str) -> Iterator[dict[str, Any]]:
        """Rows of one mailbox folder, with the columns a sync compares (not the content) and their
        ETag, read page by page as they are consumed."""
        query = (f"PartitionKey eq {odata_literal(connection_id)} and user_upn eq {odata_literal(user_upn)} "
                 f"and folder_id eq {odata_literal(folder_id)}")
        return (self._versioned(e) for e in self.table.query_entities(
            query, select=["PartitionKey", "RowKey", "folder_id", "sync_round", "deleted_at", "body_blob"]))

    def current(self, connection_id: str, message_ids: Iterable[str]) -> list[dict[str, Any]]:
        """The rows of these messages as stored now, with their ETag (missing ones left out)."""
        rows = []
        for message_id in message_ids:
            try:
                rows.append(self._versioned(self.table.get_entity(connection_id, encode(message_id))))
            except ResourceNotFoundError:
                pass
        return rows

    def body_locations(self, connection_id: str) -> Iterator[tuple[str, int, int]]:
        """(body_blob, body_offset, body_length) of every row whose body lives in a pack."""
        for entity in self.table.query_entities(f"PartitionKey eq {odata_literal(connection_id)}",
                                                select=["body_blob", "body_offset", "body_length"]):
            if entity.get("body_blob") and entity.get("body_offset") is not None:
                yield entity["body_blob"], entity["body_offset"], entity["body_length"]

    @staticmethod
    def _unchanged(row: dict[str, Any]) -> dict[str, Any]:
        return {"etag": row["etag"], "match_condition": MatchConditions.IfNotModified}

    def mark_deleted(self, connection_id: str, rows: list[dict[str, Any]], when: str) -> int:
        """Keep these rows (read with their ETag, at most 100), marked deleted, in one transaction
        that fails (TableTransactionError, 412) if any of them changed since it was read."""
        self.table.submit_transaction([
            ("update", {"PartitionKey": connection_id, "RowKey": encode(r["id"]), "deleted_at": when},
             {"mode": UpdateMode.MERGE, **self._unchanged(r)}) for r in rows])
        return len(rows)

    def delete(self, connection_id: str, rows: list[dict[str, Any]]) -> int:
        """Delete these rows (read with their ETag, at most 100); fails as mark_deleted does."""
        self.table.submit_transaction([
            ("delete", {"PartitionKey": connection_id, "RowKey": encode(r["id"])}, self._unchanged(r))
            for r in rows])
        return len(rows)

    def delete_partition(self, connection_id: str) -> int:
        keys = [e["RowKey"] for e in self.table.query_entities(
            f"PartitionKey eq {odata_literal(connection_id)}", select=["RowKey"])]
        for transaction in table_batch.transactions(keys):
            self.table.submit_transaction([("delete", {"PartitionKey": connection_id, "RowKey": k})
                                           for k in transaction])
        return len(keys)
