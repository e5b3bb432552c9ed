"""The job list (newest first, filtered, paged) and the removal of finished runs.

Runs that belong to a batch are listed and removed with their batch. Paging uses a keyset
cursor (created_at and id of the last item), so runs started while a caller pages do not shift
the pages. Removal refuses active runs (409: cancel first) and, with purge_data, also deletes the
messages and blobs the run stored.
"""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from mailextract import jobs as J
from mailextract import paging
from mailextract.errors import InvalidRequest, JobConflict, JobNotFound
from mailextract.extraction.batches import reported_status, validate_batch_id
from mailextract.extraction.requests import page_limit
from mailextract.extraction.service import status_url
from mailextract.settings import Settings, get_settings
from mailextract.storage.jobs import JobStore
from mailextract.storage.keys import validate_connection_id
from mailextract.storage.mail_blobs import MailBlobs
from mailextract.storage.mail_index import MailIndex
from mailextract.vault import CredentialVault

KINDS = ("single", "sync", "batch")
# A run's row says completed as its last activity ends; its orchestration completes a moment later.
ORCHESTRATION_SETTLE_SECONDS = 5.0


def _flag(raw: str | None, name: str) -> bool:
    if raw in (None, "", "false"):
        return False
    if raw == "true":
        return True
    raise InvalidRequest(f"{name} must be true or false", field=name)


def _valid_position(position: dict[str, Any]) -> bool:
    return set(position) == {"created_at", "id"} and all(isinstance(v, str) for v in position.values())


class JobOperations:
    def __init__(self, purge_instance: Callable[[str], Awaitable[int]], *, settings: Settings | None = None,
                 jobs: JobStore | None = None, index: MailIndex | None = None, blobs: MailBlobs | None = None,
                 vault: CredentialVault | None = None):
        self.purge_instance = purge_instance
        self.settings = settings or get_settings()
        self.jobs = jobs or JobStore(self.settings)
        self.index = index or MailIndex(self.settings)
        self.blobs = blobs or MailBlobs(self.settings)
        self.vault = vault or CredentialVault(self.settings)

    async def list(self, status: str | None, kind: str | None, limit: str | None, cursor: str | None,
                   base_url: str) -> dict[str, Any]:
        if status and status not in (*J.ACTIVE, *J.FINISHED):
            raise InvalidRequest(f"status must be one of {', '.join((*J.ACTIVE, *J.FINISHED))}", field="status")
        if kind and kind not in KINDS:
            raise InvalidRequest("kind must be single, sync or batch", field="kind")
        size = page_limit(limit)
        after = paging.decode(cursor, _valid_position)
        rows = await asyncio.to_thread(self.jobs.summaries)
        candidates = []
        for row in rows:
            if row.get("parent_batch_id"):
                continue  # listed with its batch
            item_kind = "batch" if row["kind"] == "batch" else ("sync" if row.get("run_kind") == "sync" else "single")
            position = (row["created_at"], row.get("connection_id") or row.get("batch_id"))
            if (kind and item_kind != kind) or (after and position >= (after["created_at"], after["id"])):
                continue
            candidates.append((position, item_kind, row))
        candidates.sort(key=lambda c: c[0], reverse=True)
        page: list[dict[str, Any]] = []
        for _, item_kind, row in candidates:
            view = await self._view(item_kind, row, base_url)
            if status and view["status"] != status:
                continue
            if len(page) == size:  # one more match exists: there is a next page
                last = page[-1]
                return {"jobs": page, "next_cursor": paging.encode({"created_at": last["created_at"], "id": last["id"]})}
            page.append(view)
        return {"jobs": page, "next_cursor": None}

    async def _view(self, kind: str, row: dict[str, Any], base_url: str) -> dict[str, Any]:
        """A list item: a single run or sync shows its mailbox(es); a batch, its users and totals."""
        if kind != "batch":
            status, user_upn, messages = row["status"], row.get("user_upn"), row.get("messages_extracted", 0)
            users = len(row["mailboxes"]) if row.get("mailboxes") else None
            url = status_url(base_url, row["connection_id"])
        else:
            runs = await asyncio.to_thread(self.jobs.children, row["batch_id"])
            status, user_upn, users = reported_status(row, runs), None, row.get("user_count", len(runs))
            messages = sum(r.get("messages_extracted", 0) for r in runs)
            url = f"{base_url}/api/emails/extract/batch/status/{row['batch_id']}"
        return {"kind": kind, "id": row.get("connection_id") or row["batch_id"], "status": status,
                "user_upn": user_upn, "users": users, "messages_extracted": messages,
                "created_at": row["created_at"], "updated_at": row["updated_at"], "status_url": url}

    async def _purge_finished(self, instance_id: str) -> int:
        """Purge the history of a run whose row is finished, giving its orchestration the moment it
        may still need to complete (the runtime refuses to purge a running instance)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ORCHESTRATION_SETTLE_SECONDS
        while True:
            try:
                return await self.purge_instance(instance_id)
            except JobConflict:
                if loop.time() >= deadline:
                    raise
                await asyncio.sleep(0.2)

    async def _remove_run(self, run: dict[str, Any], purge_data: bool, counts: dict[str, int]) -> None:
        connection_id = run["connection_id"]
        counts["orchestrations"] += await self._purge_finished(run["instance_id"])
        if purge_data:
            counts["messages"] += await asyncio.to_thread(self.index.delete_partition, connection_id)
            counts["blobs"] += await asyncio.to_thread(self.blobs.delete_prefix, f"{connection_id}/")
        await asyncio.to_thread(self.jobs.delete, connection_id)

    async def delete_run(self, connection_id: str, purge_data: str | None) -> dict[str, Any]:
        validate_connection_id(connection_id)
        purge = _flag(purge_data, "purge_data")
        run = await asyncio.to_thread(self.jobs.get, connection_id)
        if run is None:
            raise JobNotFound(f"no extraction run for connection '{connection_id}'")
        if run["status"] in J.ACTIVE:
            raise JobConflict(f"the run of connection '{connection_id}' is {run['status']}; cancel it first",
                              status=run["status"])
        counts = {"orchestrations": 0, "messages": 0, "blobs": 0}
        await asyncio.to_thread(self.vault.forget_for_run, run)
        await self._remove_run(run, purge, counts)
        return {"connection_id": connection_id, "deleted": {"job": True, **counts}}

    async def delete_batch(self, batch_id: str, purge_data: str | None) -> dict[str, Any]:
        validate_batch_id(batch_id)
        purge = _flag(purge_data, "purge_data")
        batch = await asyncio.to_thread(self.jobs.get_batch, batch_id)
        if batch is None:
            raise JobNotFound(f"no batch '{batch_id}'")
        runs = await asyncio.to_thread(self.jobs.children, batch_id)
        status = reported_status(batch, runs)
        if status in J.ACTIVE:
            raise JobConflict(f"batch '{batch_id}' is {status}; cancel it first", status=status)
        counts = {"jobs": 0, "orchestrations": 0, "messages": 0, "blobs": 0}
        for run in runs:
            await self._remove_run(run, purge, counts)
            counts["jobs"] += 1
        counts["orchestrations"] += await self._purge_finished(batch_id)
        await asyncio.to_thread(self.vault.forget, batch.get("credential"))
        await asyncio.to_thread(self.jobs.delete_batch, batch_id)
        return {"batch_id": batch_id, "deleted": counts}
