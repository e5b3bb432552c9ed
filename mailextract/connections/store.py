"""Connection records in Table storage: table `Connections`, PartitionKey "connection",
RowKey the connection id.

Every change is a read-modify-write guarded by the row's ETag and retried on conflict (as in
JobStore), so a user's PUT and a sync recording its outcome never overwrite each other. Fields
not listed below (a sync may keep its own state in the record) are kept as they are.

Record fields: name (str|None), mailboxes (list of addresses), folders (list|None = every
folder), schedule (the text), interval_seconds (int), options ({"body_format", "include_attachments",
"purge_deleted"}), enabled (bool), credential (a vault reference, never a secret), created_at,
updated_at, last_sync_at (str|None), last_sync_status (str|None), next_sync_at (ISO str).
JSON-valued fields are stored as JSON text; records read back carry their key as `id` and the
row's `etag`.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Callable

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from mailextract.connections.schedule import as_utc, parse_iso
from mailextract.errors import ConnectionExists, InvalidRequest
from mailextract.settings import Settings
from mailextract.storage import account

TABLE = "Connections"
PARTITION = "connection"
JSON_FIELDS = ("mailboxes", "folders", "options", "credential")
# Table storage drops None-valued properties: these read back as None when absent.
NULLABLE_FIELDS = ("name", "folders", "last_sync_at", "last_sync_status", "next_sync_at")
MAX_PROPERTY_BYTES = 64 * 1024  # a string property holds at most 64 KiB of UTF-16


def _to_entity(connection_id: str, record: dict[str, Any]) -> dict[str, Any]:
    entity: dict[str, Any] = {"PartitionKey": PARTITION, "RowKey": connection_id}
    for name, value in record.items():
        if name in ("PartitionKey", "RowKey", "etag", "id"):
            continue
        if name in JSON_FIELDS:
            value = json.dumps(value)
            if len(value.encode("utf-16-le")) > MAX_PROPERTY_BYTES:
                raise InvalidRequest(f"{name} is too large to store (at most 64 KiB as JSON text)", field=name)
        entity[name] = value
    return entity


def _from_entity(entity: Any) -> dict[str, Any]:
    record: dict[str, Any] = {name: None for name in NULLABLE_FIELDS}
    record.update((k, v) for k, v in entity.items() if k not in ("PartitionKey", "RowKey"))
    record["id"] = entity["RowKey"]
    for name in JSON_FIELDS:
        if isinstance(record.get(name), str):
            record[name] = json.loads(record[name])
    record["etag"] = entity.metadata.get("etag") if hasattr(entity, "metadata") else None
    return record


def is_due(record: dict[str, Any], now: datetime) -> bool:
    """Enabled and next_sync_at reached (a missing or unreadable next_sync_at counts as due)."""
    if not record.get("enabled"):
        return False
    text = record.get("next_sync_at")
    if not text:
        return True
    try:
        return parse_iso(text) <= as_utc(now)
    except (TypeError, ValueError):
        return True


class ConnectionStore:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings

    @property
    def table(self):
        return account.table(TABLE, self.settings)

    def create(self, connection_id: str, record: dict[str, Any]) -> None:
        """Store a new connection; ConnectionExists (409) when the id is taken."""
        try:
            self.table.create_entity(_to_entity(connection_id, record))
        except ResourceExistsError:
            raise ConnectionExists(f"connection '{connection_id}' already exists") from None

    def get(self, connection_id: str) -> dict[str, Any] | None:
        try:
            return _from_entity(self.table.get_entity(PARTITION, connection_id))
        except ResourceNotFoundError:
            return None

    def list(self) -> list[dict[str, Any]]:
        """Every connection, oldest first (created_at, then id)."""
        rows = [_from_entity(e) for e in self.table.query_entities(f"PartitionKey eq '{PARTITION}'")]
        return sorted(rows, key=lambda r: (r.get("created_at") or "", r["id"]))

    def update(self, connection_id: str, mutate: Callable[[dict[str, Any]], bool | None]) -> dict[str, Any] | None:
        """Apply `mutate` to the current record until it sticks. `mutate` returns False to leave the
        record unchanged, and may raise to refuse. Returns the record as stored (None when it does
        not exist), with its new etag."""
        while True:
            current = self.get(connection_id)
            if current is None:
                return None
            if mutate(current) is False:
                return current
            try:
                written = self.table.update_entity(_to_entity(connection_id, current), mode=UpdateMode.REPLACE,
                                                   etag=current["etag"], match_condition=MatchConditions.IfNotModified)
                current["etag"] = (written or {}).get("etag")
                return current
            except ResourceModifiedError:
                continue
            except ResourceNotFoundError:  # deleted between our read and write
                return None

    def delete(self, connection_id: str) -> None:
        """Remove the record (nothing happens when it does not exist)."""
        self.table.delete_entity(PARTITION, connection_id)

    def due(self, now: datetime) -> list[dict[str, Any]]:
        """Enabled connections whose next_sync_at is at or before `now` (or missing), oldest first."""
        return [record for record in self.list() if is_due(record, now)]
