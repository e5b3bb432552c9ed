"""Job state in Table storage: one row per connection (its current run) and one per batch.

Status is read from here, never by replaying orchestrations. Every change is a read-modify-
write guarded by the row's ETag and retried on conflict, so an activity storing a checkpoint
and a user pausing the run never overwrite each other. Rows:
  PartitionKey "job",   RowKey connection_id  the run of a connection (batch children included:
                                              their connection id is `{batch_id}-{index:04d}` and
                                              their field parent_batch_id names the batch)
  PartitionKey "batch", RowKey batch_id       a batch
JSON-valued fields (options, credential, checkpoint, error, last_retry) are stored as JSON text; records
read back carry their key as `connection_id` or `batch_id`.
"""
from __future__ import annotations

import copy
import json
from typing import Any, Callable

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from mailextract.errors import JobConflict
from mailextract.jobs import ACTIVE, utcnow_iso
from mailextract.settings import Settings
from mailextract.storage import account, table_batch
from mailextract.storage.keys import odata_literal

TABLE = "ExtractionJobs"
JSON_FIELDS = ("options", "credential", "checkpoint", "error", "mailboxes", "last_retry")
JOB, BATCH = "job", "batch"


KEY_FIELD = {"job": "connection_id", "batch": "batch_id"}


def _to_entity(kind: str, key: str, record: dict[str, Any]) -> dict[str, Any]:
    entity = {"PartitionKey": kind, "RowKey": key}
    for name, value in record.items():
        if name in ("PartitionKey", "RowKey", "etag", KEY_FIELD[kind]):
            continue
        entity[name] = json.dumps(value) if name in JSON_FIELDS else value
    return entity


def _from_entity(entity: Any) -> dict[str, Any]:
    record = {k: v for k, v in entity.items() if k not in ("PartitionKey", "RowKey")}
    record[KEY_FIELD[entity["PartitionKey"]]] = entity["RowKey"]
    for name in JSON_FIELDS:
        if isinstance(record.get(name), str):
            record[name] = json.loads(record[name])
    record["etag"] = entity.metadata.get("etag") if hasattr(entity, "metadata") else None
    return record


class JobStore:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings

    @property
    def table(self):
        return account.table(TABLE, self.settings)

    def _get(self, kind: str, key: str) -> dict[str, Any] | None:
        try:
            return _from_entity(self.table.get_entity(kind, key))
        except ResourceNotFoundError:
            return None

    def get(self, connection_id: str) -> dict[str, Any] | None:
        return self._get(JOB, connection_id)

    def get_batch(self, batch_id: str) -> dict[str, Any] | None:
        return self._get(BATCH, batch_id)

    def _replace_if_idle(self, kind: str, key: str, record: dict[str, Any], what: str) -> None:
        """Create the row, or replace it when its run is finished; 409 while a run is active."""
        current = self._get(kind, key)
        entity = _to_entity(kind, key, record)
        try:
            if current is None:
                self.table.create_entity(entity)
                return
            if current.get("status") in ACTIVE:
                raise JobConflict(f"{what} already has a run that is {current['status']}", status=current["status"])
            self.table.update_entity(entity, mode=UpdateMode.REPLACE, etag=current["etag"],
                                     match_condition=MatchConditions.IfNotModified)
        except (ResourceExistsError, ResourceModifiedError):
            latest = self._get(kind, key) or {}
            raise JobConflict(f"{what} was started by another request at the same time",
                              status=latest.get("status", "pending")) from None

    def create_run(self, connection_id: str, record: dict[str, Any]) -> None:
        self._replace_if_idle(JOB, connection_id, record, f"connection '{connection_id}'")

    def create_batch(self, batch_id: str, record: dict[str, Any]) -> None:
        self._replace_if_idle(BATCH, batch_id, record, f"batch '{batch_id}'")

    def put_runs(self, records: dict[str, dict[str, Any]]) -> None:
        """Create the runs of a new batch (their ids are new: plain upserts, 100 per transaction)."""
        entities = [_to_entity(JOB, key, rec) for key, rec in records.items()]
        for transaction in table_batch.transactions(entities):
            table_batch.upsert(self.table, transaction)

    def _update(self, kind: str, key: str, mutate: Callable[[dict[str, Any]], bool | None],
                read: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Apply `mutate` to the current row until it sticks. `mutate` returns False to leave
        the row unchanged. Returns the row as stored, with its new ETag (None when it does not exist).

        `read`: the row as the caller has just read it (with its ETag), tried first instead of
        reading it again; if it is no longer current, the write conflicts and the row is read."""
        current = copy.deepcopy(read)
        while True:
            current = current or self._get(kind, key)
            if current is None:
                return None
            if mutate(current) is False:
                return current
            try:
                stored = self.table.update_entity(_to_entity(kind, key, current), mode=UpdateMode.REPLACE,
                                                  etag=current["etag"], match_condition=MatchConditions.IfNotModified)
                current["etag"] = stored.get("etag") or current["etag"]  # the row as stored now
                return current
            except ResourceModifiedError:
                current = None

    def update(self, connection_id: str, mutate: Callable[[dict[str, Any]], bool | None],
               read: dict[str, Any] | None = None) -> dict[str, Any] | None:
        return self._update(JOB, connection_id, mutate, read)

    def update_batch(self, batch_id: str, mutate: Callable[[dict[str, Any]], bool | None]) -> dict[str, Any] | None:
        return self._update(BATCH, batch_id, mutate)

    def delete(self, connection_id: str) -> None:
        self.table.delete_entity(JOB, connection_id)

    def delete_batch(self, batch_id: str) -> None:
        self.table.delete_entity(BATCH, batch_id)

    def summaries(self) -> list[dict[str, Any]]:
        """Every run and batch with the columns the job list shows (no checkpoints, no options)."""
        columns = ["PartitionKey", "RowKey", "kind", "status", "user_upn", "mailboxes", "user_count",
                   "parent_batch_id", "messages_extracted", "created_at", "updated_at"]
        return [_from_entity(e) | {"kind": e["PartitionKey"], "run_kind": e.get("kind")}
                for e in self.table.query_entities("PartitionKey eq 'job' or PartitionKey eq 'batch'",
                                                   select=columns)]

    def children(self, batch_id: str) -> list[dict[str, Any]]:
        """The runs of a batch, in user order (their keys are `{batch_id}-{index:04d}`)."""
        low, high = f"{batch_id}-", f"{batch_id}."
        query = (f"PartitionKey eq 'job' and RowKey ge {odata_literal(low)} "
                 f"and RowKey lt {odata_literal(high)}")
        return sorted((_from_entity(e) for e in self.table.query_entities(query)),
                      key=lambda r: r["connection_id"])


def move_status(jobs: JobStore, connection_id: str, run_id: str, status: str, *, only_from: tuple[str, ...],
                **fields: Any) -> dict[str, Any] | None:
    """Move the run to `status` if it is still run `run_id` and in `only_from` (compare-and-set);
    the stored row when it moved, None when it did not (finished, changed or replaced meanwhile)."""
    changed: list[dict[str, Any]] = []

    def mutate(row: dict[str, Any]):
        changed.clear()  # mutate runs again after a conflict: keep only the attempt that sticks
        if row.get("run_id") != run_id or row.get("status") not in only_from:
            return False
        row.update(fields, status=status, updated_at=utcnow_iso())
        changed.append(row)
    jobs.update(connection_id, mutate)
    return changed[0] if changed else None


def note_retry(jobs: JobStore, retry: dict[str, Any], *, batch_id: str | None = None,
               connection_id: str | None = None, run_id: str | None = None) -> bool:
    """Count a retried step on an active run's (or batch's) row and keep the last one's note
    (`retry`: step, attempt, max_attempts, error, retry_at), so the status routes show that the
    run is waiting to try again and why. False when the row is gone, finished or another run's."""
    def mutate(row: dict[str, Any]):
        if row.get("status") not in ACTIVE or (run_id is not None and row.get("run_id") != run_id):
            return False
        row.update(retries=row.get("retries", 0) + 1, last_retry=retry, updated_at=utcnow_iso())
    row = jobs.update_batch(batch_id, mutate) if batch_id else jobs.update(connection_id, mutate)
    return bool(row and row.get("last_retry") == retry)


def retries_view(row: dict[str, Any]) -> dict[str, Any] | None:
    """What the status routes show of a row's retries: None when it never retried a step."""
    if not row.get("retries"):
        return None
    return {"count": row["retries"], "last": row.get("last_retry")}
