"""Durable state in Azure Table storage, large payloads in Blob storage.

One table per task hub; one partition per instance holding every row of that instance, so an
episode commits atomically in one entity-group transaction (storage.md: up to 100 entities in
one partition):
  RowKey "I"                      the instance: name, status, times, input/output/custom status,
                                  parent link and the execution's bookkeeping
  "H{execution}-{seq:06d}"        one history chunk (the events of one episode)
  "M{visible_ms:015d}-{key}"      a message waiting to be delivered (completions, raised events,
                                  timers, which become visible at their fire time, control)
  "W{execution}-{task:08d}"       an activity to run; deleted in the same transaction that
                                  stores its result, so an activity runs again after a crash
                                  only if its result was not stored (at-least-once, as in Azure)
Text over 30,000 characters (a string property holds 32K UTF-16 units) goes to a blob and the
row keeps the blob's name.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableServiceClient
from azure.storage.blob.aio import BlobServiceClient

from devhost.durable.history import utcnow

INLINE_LIMIT = 30_000
TRANSACTION_LIMIT = 100


def odata_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def epoch_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def message_key(visible_ms: int, key: str | None = None) -> str:
    return f"M{visible_ms:015d}-{key or uuid.uuid4().hex}"


def work_key(execution_id: str, task_id: int) -> str:
    return f"W{execution_id}-{task_id:08d}"


def history_key(execution_id: str, seq: int) -> str:
    return f"H{execution_id}-{seq:06d}"


@dataclass
class Row:
    key: str
    data: dict[str, Any]

    @property
    def visible_ms(self) -> int:
        return int(self.key[1:16])


@dataclass
class Partition:
    instance: dict[str, Any] | None
    history: dict[str, list[Row]] = field(default_factory=dict)  # by execution id, in order
    messages: list[Row] = field(default_factory=list)
    work: list[Row] = field(default_factory=list)


def _not_found(exc: HttpResponseError) -> bool:
    return getattr(exc, "status_code", None) == 404 or "ResourceNotFound" in str(exc)


class DurableStore:
    def __init__(self, connection_string: str, hub: str):
        self.hub = hub
        self.table_name = f"{hub}Instances"
        self.container_name = f"{hub.lower()}-largemessages"
        self._tables = TableServiceClient.from_connection_string(connection_string)
        self._blobs = BlobServiceClient.from_connection_string(connection_string)
        self.table = self._tables.get_table_client(self.table_name)
        self.container = self._blobs.get_container_client(self.container_name)

    async def open(self) -> None:
        try:
            await self._tables.create_table(self.table_name)
        except ResourceExistsError:
            pass
        try:
            await self.container.create_container()
        except ResourceExistsError:
            pass

    async def close(self) -> None:
        await self.table.close()
        await self._tables.close()
        await self.container.close()
        await self._blobs.close()

    # --- payloads ------------------------------------------------------------------------
    async def _pack(self, partition: str, row_key: str, data: dict[str, Any]) -> dict[str, Any]:
        text = json.dumps(data, separators=(",", ":"))
        if len(text) <= INLINE_LIMIT:
            return {"Data": text}
        name = f"{partition}/{row_key}-{uuid.uuid4().hex}.json"
        await self.container.upload_blob(name, text.encode("utf-8"), overwrite=True)
        return {"DataBlob": name}

    async def _unpack(self, entity: dict[str, Any]) -> dict[str, Any]:
        if entity.get("DataBlob"):
            blob = await self.container.download_blob(entity["DataBlob"])
            return json.loads(await blob.readall())
        return json.loads(entity.get("Data") or "{}")

    async def entity(self, partition: str, row_key: str, data: dict[str, Any],
                     **columns: Any) -> dict[str, Any]:
        return {"PartitionKey": partition, "RowKey": row_key, **columns,
                **await self._pack(partition, row_key, data)}

    async def instance_entity(self, instance: dict[str, Any]) -> dict[str, Any]:
        """The instance row: filterable columns beside the packed document."""
        return await self.entity(
            instance["instanceId"], "I", instance,
            Name=instance["name"], RuntimeStatus=instance["runtimeStatus"],
            CreatedTime=instance["createdTime"], LastUpdatedTime=instance["lastUpdatedTime"])

    # --- reads ---------------------------------------------------------------------------
    async def load(self, instance_id: str) -> Partition:
        part = Partition(instance=None)
        async for entity in self.table.query_entities(f"PartitionKey eq {odata_quote(instance_id)}"):
            key = entity["RowKey"]
            data = await self._unpack(entity)
            if key == "I":
                part.instance = data
            elif key.startswith("H"):
                part.history.setdefault(key[1:].rsplit("-", 1)[0], []).append(Row(key, data))
            elif key.startswith("M"):
                part.messages.append(Row(key, data))
            elif key.startswith("W"):
                part.work.append(Row(key, data))
        return part

    async def get_instance(self, instance_id: str) -> dict[str, Any] | None:
        try:
            entity = await self.table.get_entity(instance_id, "I")
        except ResourceNotFoundError:
            return None
        return await self._unpack(entity)

    async def query_instances(self, odata_filter: str = "RowKey eq 'I'") -> list[dict[str, Any]]:
        return [await self._unpack(e) async for e in self.table.query_entities(odata_filter)]

    async def scan_rows(self, prefix: str) -> list[tuple[str, Row]]:
        """Rows of one kind across all instances (recovery after a restart)."""
        upper = chr(ord(prefix) + 1)
        rows = []
        async for entity in self.table.query_entities(f"RowKey ge '{prefix}' and RowKey lt '{upper}'"):
            rows.append((entity["PartitionKey"], Row(entity["RowKey"], await self._unpack(entity))))
        return rows

    # --- writes --------------------------------------------------------------------------
    async def transact(self, operations: list[tuple]) -> None:
        """Submit operations in transactions of at most 100; each chunk is atomic."""
        for start in range(0, len(operations), TRANSACTION_LIMIT):
            await self.table.submit_transaction(operations[start:start + TRANSACTION_LIMIT])

    @staticmethod
    def upsert(entity: dict[str, Any]) -> tuple:
        return ("upsert", entity, {"mode": UpdateMode.REPLACE})

    @staticmethod
    def delete(partition: str, row_key: str) -> tuple:
        return ("delete", {"PartitionKey": partition, "RowKey": row_key})

    async def put_message(self, instance_id: str, data: dict[str, Any],
                          visible_at: datetime | None = None, key: str | None = None) -> str:
        row_key = message_key(epoch_ms(visible_at or utcnow()), key)
        await self.table.upsert_entity(await self.entity(instance_id, row_key, data),
                                       mode=UpdateMode.REPLACE)
        return row_key

    async def complete_work(self, instance_id: str, work_row_key: str, data: dict[str, Any]) -> bool:
        """Store an activity's result and retire its work row atomically.

        False when the work row is gone (its result was stored already, or the instance was
        purged): the duplicate result is dropped.
        """
        try:
            await self.table.submit_transaction([
                ("create", await self.entity(instance_id, message_key(epoch_ms(utcnow())), data)),
                self.delete(instance_id, work_row_key),
            ])
            return True
        except (HttpResponseError, ResourceNotFoundError) as exc:
            if getattr(exc, "status_code", None) == 409 or _not_found(exc):
                return False
            raise

    async def delete_rows(self, instance_id: str, row_keys: Iterable[str]) -> None:
        """Delete rows, in transactions of up to 100; a row someone else deleted first is gone all
        the same (a purge and an episode retiring the same finished instance's messages race)."""
        keys = list(row_keys)
        for start in range(0, len(keys), TRANSACTION_LIMIT):
            chunk = keys[start:start + TRANSACTION_LIMIT]
            try:
                await self.table.submit_transaction([self.delete(instance_id, k) for k in chunk])
            except HttpResponseError as exc:
                if not _not_found(exc):
                    raise
                for key in chunk:  # the transaction did nothing: delete what is left, one by one
                    await self.table.delete_entity(instance_id, key)  # no error for a row already gone

    async def purge(self, instance_id: str) -> int:
        keys = [e["RowKey"] async for e in self.table.query_entities(
            f"PartitionKey eq {odata_quote(instance_id)}", select=["RowKey"])]
        await self.delete_rows(instance_id, keys)
        async for blob in self.container.list_blobs(name_starts_with=f"{instance_id}/"):
            await self.container.delete_blob(blob.name)
        return 1 if "I" in keys else 0
