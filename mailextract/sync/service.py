"""Starting syncs of connections, on demand or on schedule, and recording how they ended.

A sync is a mailbox run of kind "sync" under the connection's id: the same orchestration as an
extraction, reading each of the connection's mailboxes from the deltaLinks saved by earlier
runs (an extraction of the same connection id saves them too). At most one run per connection
is active, enforced by the job row (created or replaced with a compare-and-set: a second start
gets 409). Each sync has an orchestration instance of its own, `sync-{run_id}`: a run's row reads
`completed` a moment before its orchestration has ended, and a sync started in that moment must
not collide with it; the previous run's history is purged once the new one has started
(extraction/service.py, forget_previous_instance). The schedule moves a connection's next due
time before starting it, so two timer ticks never start the same connection twice.
"""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from mailextract import jobs as J
from mailextract.connections.schedule import to_iso
from mailextract.connections.store import ConnectionStore
from mailextract.errors import JobConflict, JobNotFound, RuntimeUnavailable
from mailextract.extraction.service import (SINGLE_ORCHESTRATOR, START_FAILED, Orchestrations, fail_unstarted,
                                            forget_previous_instance, start_orchestration, status_url)
from mailextract.run_log import log_event
from mailextract.settings import Settings, get_settings
from mailextract.storage.jobs import JobStore
from mailextract.storage.keys import validate_connection_id


def sync_instance_id(run_id: str) -> str:
    return f"sync-{run_id}"


def record_outcome(job: dict[str, Any], connections: ConnectionStore | None = None) -> None:
    """When a sync run ends, the connection shows when and how it last synced."""
    if job.get("kind") != "sync":
        return

    def mutate(row: dict[str, Any]):
        row.update(last_sync_at=J.utcnow_iso(), last_sync_status=job["status"])
    (connections or ConnectionStore()).update(job["connection_id"], mutate)


class SyncService:
    def __init__(self, orchestrations: Orchestrations, *, settings: Settings | None = None,
                 jobs: JobStore | None = None, connections: ConnectionStore | None = None):
        self.orchestrations = orchestrations
        self.settings = settings or get_settings()
        self.jobs = jobs or JobStore(self.settings)
        self.connections = connections or ConnectionStore(self.settings)

    async def start(self, connection_id: str, base_url: str, trigger: str = "manual") -> dict[str, Any]:
        validate_connection_id(connection_id)
        connection = await asyncio.to_thread(self.connections.get, connection_id)
        if connection is None:
            raise JobNotFound(f"no connection '{connection_id}'")
        options = connection.get("options") or {}
        run_id = uuid.uuid4().hex
        now = J.utcnow_iso()
        record = {
            "kind": "sync", "user_upn": None, "mailboxes": connection["mailboxes"], "status": J.PENDING,
            "run_id": run_id, "instance_id": sync_instance_id(run_id),
            "options": J.ExtractionOptions(
                folders=tuple(connection["folders"]) if connection.get("folders") else None,
                include_attachments=bool(options.get("include_attachments")),
                body_format=options.get("body_format", "html")).to_json(),
            "purge_deleted": bool(options.get("purge_deleted")), "credential": connection["credential"],
            "credential_owner": "connection", "checkpoint": None, "error": None, "created_at": now, "updated_at": now}
        previous = await asyncio.to_thread(self.jobs.get, connection_id)
        await asyncio.to_thread(self.jobs.create_run, connection_id, record)
        def fail() -> None:  # the connection shows the failed sync, as after any sync that ends
            failed = fail_unstarted(self.jobs, connection_id, run_id, START_FAILED)
            if failed:
                record_outcome(failed, self.connections)
        await start_orchestration(self.orchestrations, SINGLE_ORCHESTRATOR, record["instance_id"],
                                  {"connection_id": connection_id, "run_id": run_id}, fail)
        await forget_previous_instance(self.orchestrations, previous, record["instance_id"])
        log_event("sync.started", connection_id=connection_id, run_id=run_id, trigger=trigger,
                  mailboxes=len(connection["mailboxes"]))
        return {"connection_id": connection_id, "status": J.PENDING,
                "status_url": status_url(base_url, connection_id)}

    async def start_due(self, now: datetime | None = None) -> dict[str, list[str]]:
        """Start every enabled connection that is due; report which started, which were busy and
        which the runtime refused (that run shows `failed`; the next sync is at the next interval)."""
        now = now or datetime.now(timezone.utc)
        started, busy, refused = [], [], []
        for connection in await asyncio.to_thread(self.connections.due, now):
            connection_id = connection["id"]
            interval = timedelta(seconds=connection["interval_seconds"])

            def reschedule(row: dict[str, Any]):
                row["next_sync_at"] = to_iso(now + interval)
            await asyncio.to_thread(self.connections.update, connection_id, reschedule)
            try:
                await self.start(connection_id, "", trigger="schedule")
                started.append(connection_id)
            except JobConflict:
                busy.append(connection_id)
                log_event("sync.skipped", connection_id=connection_id, reason="a run of this connection is active")
            except RuntimeUnavailable:
                refused.append(connection_id)
                log_event("sync.skipped", connection_id=connection_id, reason="the runtime refused the start")
        return {"started": started, "busy": busy, "refused": refused}
