"""The job list (newest first, filtered, paged) and the removal of finished runs.

Runs that belong to a batch are listed and removed with their batch. Paging uses a keyset
cursor (created_at and id of the last item), so runs started while a caller pages do not shift
the pages. Removal refuses active runs (409: cancel first) and, with purge_data, also deletes the
messages and blobs the run stored.

Removal and the orchestration: a run's row says finished before its orchestration does. The last
activity marks it completed and the orchestration completes after that activity returns; a cancel
marks it cancelled and asks for a terminate, and the instance says Running until the terminate
message is processed (on Azure Storage that can wait for the control queue's next poll, up to
maxQueuePollingInterval, 30 s by default). So removal first waits for the orchestration to reach
Completed, Failed, Terminated or Canceled (reading its status: extensions before 3.9.1 would purge
a running instance, later ones refuse it with 412, which the port reports as JobConflict and is
waited out the same way), purges its history, and only then forgets the credential and deletes
data and rows. When it has not settled within ORCHESTRATION_SETTLE_SECONDS the answer is 409
"still stopping" and nothing was deleted: the same call later finishes the job. A batch's own
orchestration goes first, so it can start no run after its runs were read.
docs/durable-host.md has the extension's answers this relies on.
"""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from mailextract import jobs as J
from mailextract import paging
from mailextract.errors import InvalidRequest, JobConflict, JobNotFound
from mailextract.extraction.batches import reported_status, validate_batch_id
from mailextract.extraction.requests import page_limit
from mailextract.extraction.service import ENDED_RUNTIME_STATUSES, status_url
from mailextract.settings import Settings, get_settings
from mailextract.storage.jobs import JobStore
from mailextract.storage.keys import validate_connection_id
from mailextract.storage.mail_blobs import MailBlobs
from mailextract.storage.mail_index import MailIndex
from mailextract.vault import CredentialVault

KINDS = ("single", "sync", "batch")
# How long a removal waits for a finished run's orchestration to settle: longer than the Azure Storage
# provider's default maxQueuePollingInterval (30 s), the longest a terminate can wait for its control
# queue to be read, and well under the 230 s an HTTP response may take on Azure (docs/durable-host.md).
ORCHESTRATION_SETTLE_SECONDS = 45.0
# The documented 409 (http_triggers/openapi.json), as the durable port words the runtime's refusal.
STILL_STOPPING = "the run's orchestration is still stopping; try again in a few seconds"


def _flag(raw: str | None, name: str) -> bool:
    if raw in (None, "", "false"):
        return False
    if raw == "true":
        return True
    raise InvalidRequest(f"{name} must be true or false", field=name)


def _valid_position(position: dict[str, Any]) -> bool:
    return set(position) == {"created_at", "id"} and all(isinstance(v, str) for v in position.values())


class JobOperations:
    def __init__(self, purge_instance: Callable[[str], Awaitable[int]], *,
                 instance_status: Callable[[str], Awaitable[str | None]] | None = None,
                 settings: Settings | None = None, jobs: JobStore | None = None, index: MailIndex | None = None,
                 blobs: MailBlobs | None = None, vault: CredentialVault | None = None):
        """`purge_instance` deletes an instance's history (JobConflict while the runtime refuses);
        `instance_status` reads its runtime status (None: no such instance). Without the latter
        every instance is taken as settled and only the runtime's refusal is waited out."""
        self.purge_instance = purge_instance
        self.instance_status = instance_status
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

    async def _purge_finished(self, instance_id: str, deadline: float | None = None) -> int:
        """Purge the history of an orchestration whose row is finished, once it has settled; the
        count purged (0: there is none, never started or purged already).

        Never purges one that is still going: its status is read first, and a refusal of the
        runtime (JobConflict) is taken like a status that has not settled. Raises JobConflict
        "still stopping", having deleted nothing, when it has not settled by `deadline` (loop time;
        ORCHESTRATION_SETTLE_SECONDS from now by default)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ORCHESTRATION_SETTLE_SECONDS if deadline is None else deadline
        pause = 0.2
        while True:
            status = await self.instance_status(instance_id) if self.instance_status else ENDED_RUNTIME_STATUSES[0]
            if status is None:
                return 0
            if status in ENDED_RUNTIME_STATUSES:
                try:
                    return await self.purge_instance(instance_id)
                except JobConflict:
                    pass  # refused by the runtime: not ended after all
            if loop.time() >= deadline:
                raise JobConflict(STILL_STOPPING)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)

    async def _remove_run_data(self, run: dict[str, Any], purge_data: bool, counts: dict[str, int]) -> None:
        """The run's data (with purge_data) and its row; its orchestration is purged already."""
        connection_id = run["connection_id"]
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
        counts = {"orchestrations": await self._purge_finished(run["instance_id"]), "messages": 0, "blobs": 0}
        await asyncio.to_thread(self.vault.forget_for_run, run)
        await self._remove_run_data(run, purge, counts)
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
        deadline = asyncio.get_running_loop().time() + ORCHESTRATION_SETTLE_SECONDS  # one wait for them all
        counts = {"jobs": 0, "orchestrations": await self._purge_finished(batch_id, deadline), "messages": 0,
                  "blobs": 0}
        runs = await asyncio.to_thread(self.jobs.children, batch_id)  # the batch starts no more of them now
        if (status := reported_status(batch, runs)) in J.ACTIVE:
            raise JobConflict(f"batch '{batch_id}' is {status}; cancel it first", status=status)
        for run in runs:
            counts["orchestrations"] += await self._purge_finished(run["instance_id"], deadline)
        for run in runs:
            await self._remove_run_data(run, purge, counts)
            counts["jobs"] += 1
        await asyncio.to_thread(self.vault.forget, batch.get("credential"))
        await asyncio.to_thread(self.jobs.delete_batch, batch_id)
        return {"batch_id": batch_id, "deleted": counts}
