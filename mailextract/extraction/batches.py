"""Batch extraction: many mailboxes under one batch id, each a run of its own.

Pause and continue act on the batch and on every run in it. The stored statuses are the truth
and the events only wake orchestrations: a run not started yet is marked `paused` directly and
its orchestration, when it starts, waits for `continue`; a running one is marked `pausing` and
sent `pause`. The batch orchestration checks the batch's status before starting more runs and
waits for `continue-{cycle}` while paused: one event name per pause cycle, because SDK 1.x
hands a buffered event to every later wait on the same name (durable-protocol.md, #507).
A failing mailbox fails its own run only; the batch completes with per-user outcomes.
"""
from __future__ import annotations

import asyncio
import uuid
from typing import Any

from mailextract import jobs as J
from mailextract.errors import InvalidRequest, JobNotFound
from mailextract.extraction.batch_steps import BatchSteps
from mailextract.extraction.requests import BatchStartRequest
from mailextract.extraction.service import (BATCH_ORCHESTRATOR, START_FAILED, ExtractionService, Orchestrations,
                                            child_connection_id, fail_unstarted, run_view, start_orchestration)
from mailextract.run_log import log_event
from mailextract.settings import Settings, get_settings
from mailextract.storage.jobs import JobStore, retries_view
from mailextract.vault import CredentialVault

BATCH_PREFIX = "batch_"


def validate_batch_id(batch_id: str) -> str:
    if not (isinstance(batch_id, str) and batch_id.startswith(BATCH_PREFIX) and batch_id[6:].isalnum()
            and len(batch_id) <= 64):
        raise InvalidRequest(f"'{batch_id[:80]}' is not a batch id (batch ids look like batch_1a2b...)",
                             field="batch_id")
    return batch_id


def reported_status(batch: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    """`pausing` becomes `paused` once no run in the batch is still working."""
    if batch["status"] == J.PAUSING and not any(r["status"] in (J.IN_PROGRESS, J.PAUSING) for r in runs):
        return J.PAUSED
    return batch["status"]


def totals(runs: list[dict[str, Any]]) -> dict[str, int]:
    counts = {status: 0 for status in (*J.ACTIVE, *J.FINISHED)}
    for run in runs:
        counts[run["status"]] += 1
    return {"users": len(runs), **counts,
            "messages_extracted": sum(r.get("messages_extracted", 0) for r in runs)}


class BatchService:
    def __init__(self, orchestrations: Orchestrations, *, settings: Settings | None = None,
                 jobs: JobStore | None = None, vault: CredentialVault | None = None):
        self.orchestrations = orchestrations
        self.settings = settings or get_settings()
        self.jobs = jobs or JobStore(self.settings)
        self.vault = vault or CredentialVault(self.settings)
        self.runs = ExtractionService(orchestrations, settings=self.settings, jobs=self.jobs, vault=self.vault)

    async def _io(self, fn, *args):
        return await asyncio.to_thread(fn, *args)

    async def _batch(self, batch_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        validate_batch_id(batch_id)
        batch = await self._io(self.jobs.get_batch, batch_id)
        if batch is None:
            raise JobNotFound(f"no batch '{batch_id}'")
        return batch, await self._io(self.jobs.children, batch_id)

    async def start(self, body: Any, base_url: str) -> dict[str, Any]:
        request = BatchStartRequest.parse(body)
        credential = await self._io(self.vault.reference_for, request.config)
        batch_id = BATCH_PREFIX + uuid.uuid4().hex[:20]
        now = J.utcnow_iso()
        parallel = self.settings.extraction_batch_parallelism
        await self._io(self.jobs.create_batch, batch_id, {
            "status": J.PENDING, "user_count": len(request.user_upns), "options": request.options.to_json(),
            "credential": credential, "instance_id": batch_id, "cycle": 0, "max_parallel": parallel,
            "error": None, "created_at": now, "updated_at": now})
        runs = {child_connection_id(batch_id, i): {
            "user_upn": upn, "status": J.PENDING, "run_id": batch_id, "parent_batch_id": batch_id,
            "instance_id": child_connection_id(batch_id, i), "options": request.options.to_json(),
            "credential": credential, "checkpoint": None, "error": None, "created_at": now, "updated_at": now}
            for i, upn in enumerate(request.user_upns)}
        await self._io(self.jobs.put_runs, runs)
        def fail() -> None:  # the batch and every run of it fail; the batch's secret is forgotten
            steps = BatchSteps(fail_run=lambda child, run_id, error: fail_unstarted(self.jobs, child, run_id, error),
                               settings=self.settings, jobs=self.jobs, vault=self.vault)
            steps.fail(batch_id, START_FAILED)
            self.vault.forget(credential)
        await start_orchestration(self.orchestrations, BATCH_ORCHESTRATOR, batch_id,
                                  {"batch_id": batch_id, "count": len(runs), "max_parallel": parallel}, fail)
        return {"batch_id": batch_id, "status": J.PENDING,
                "users": [{"user_upn": r["user_upn"], "connection_id": cid} for cid, r in runs.items()],
                "status_url": f"{base_url}/api/emails/extract/batch/status/{batch_id}"}

    async def _transition_batch(self, batch_id: str, action: str, **changes: Any) -> dict[str, Any]:
        before: dict[str, Any] = {}

        def mutate(row: dict[str, Any]):
            J.require_transition(action, row["status"], f"batch '{batch_id}'")
            before.update(row)
            row.update(changes, updated_at=J.utcnow_iso())
            if action == "continue":
                row["cycle"] = row.get("cycle", 0) + 1
        validate_batch_id(batch_id)
        if await self._io(self.jobs.update_batch, batch_id, mutate) is None:
            raise JobNotFound(f"no batch '{batch_id}'")
        return before

    async def _move_runs(self, batch_id: str, moves: dict[str, str | None]) -> list[dict[str, Any]]:
        """Move each run whose status is a key of `moves` to that status (None: to pending
        when it never began, else in_progress); returns the moved runs."""
        moved = []
        for run in await self._io(self.jobs.children, batch_id):
            def mutate(row: dict[str, Any]):
                if row["status"] not in moves:
                    return False
                target = moves[row["status"]] or (J.IN_PROGRESS if row.get("checkpoint") else J.PENDING)
                row.update(status=target, updated_at=J.utcnow_iso())
            stored = await self._io(self.jobs.update, run["connection_id"], mutate)
            if stored is not None and stored["status"] != run["status"]:
                moved.append(stored)
        return moved

    async def pause(self, batch_id: str) -> dict[str, Any]:
        await self._transition_batch(batch_id, "pause", status=J.PAUSING)
        for run in await self._move_runs(batch_id, {J.PENDING: J.PAUSED, J.IN_PROGRESS: J.PAUSING}):
            if run["status"] == J.PAUSING:
                await self.runs._wake(run["instance_id"], "pause")
        log_event("batch.pause_requested", batch_id=batch_id)
        return {"batch_id": batch_id, "status": J.PAUSING}

    async def resume(self, batch_id: str) -> dict[str, Any]:
        before = await self._transition_batch(batch_id, "continue", status=J.IN_PROGRESS)
        for run in await self._move_runs(batch_id, {J.PAUSED: None, J.PAUSING: None}):
            await self.runs._wake(run["instance_id"], "continue")
        await self.runs._wake(batch_id, f"continue-{before.get('cycle', 0)}")
        log_event("batch.resumed", batch_id=batch_id)
        return {"batch_id": batch_id, "status": J.IN_PROGRESS}

    async def cancel(self, batch_id: str) -> dict[str, Any]:
        before = await self._transition_batch(batch_id, "cancel", status=J.CANCELLED)
        # Each run is an orchestration of its own: terminating the batch stops starting them; end each run too.
        await self.orchestrations.terminate(batch_id, "batch cancelled by the user")
        for run in await self._move_runs(batch_id, {s: J.CANCELLED for s in J.ACTIVE}):
            await self.orchestrations.terminate(run["instance_id"], "batch cancelled by the user")
        await self._io(self.vault.forget, before.get("credential"))
        log_event("batch.cancelled", batch_id=batch_id)
        return {"batch_id": batch_id, "status": J.CANCELLED}

    async def status(self, batch_id: str) -> dict[str, Any]:
        batch, runs = await self._batch(batch_id)
        view = {"batch_id": batch_id, "status": reported_status(batch, runs),
                "created_at": batch["created_at"], "updated_at": batch["updated_at"],
                "totals": totals(runs),
                "users": [{"user_upn": r["user_upn"], "connection_id": r["connection_id"], "status": r["status"],
                           "messages_extracted": r.get("messages_extracted", 0), "error": r.get("error")}
                          for r in runs]}
        if retries := retries_view(batch):
            view["retries"] = retries
        return view

    async def result(self, batch_id: str, base_url: str) -> dict[str, Any]:
        batch, runs = await self._batch(batch_id)
        return {"batch_id": batch_id, "status": reported_status(batch, runs), "totals": totals(runs),
                "users": [{**run_view(r),
                           "emails_url": f"{base_url}/api/emails/extract/result/{r['connection_id']}"}
                          for r in runs]}
