"""The extraction API's operations: what each route does, independent of Azure Functions.

The HTTP triggers parse the request, call one method here and turn the result (or a typed
error) into JSON. Orchestrations are reached through the `Orchestrations` port, which the
triggers adapt from the Durable client. Job state is written before an orchestration is told
anything, so status always reads from Table storage and a crash between the two leaves a run
that the user can see and cancel. When the runtime refuses the start, the run is failed at once
(`start_failed`) and the caller gets 503 `runtime_unavailable`: it can start the run again
instead of finding it `pending` for good. Had the start in fact taken (its answer lost), the
orchestration finds its run finished and ends without reading anything.

Batches: each user gets a run with connection id `{batch_id}-{index:04d}` (its emails page
through the single-run result route) and the run id of the batch. The batch orchestration
starts them as orchestrations of their own, at most `max_parallel` at once (batch_steps.py).
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from urllib.parse import quote
from typing import Any, Callable, Protocol

from mailextract import jobs as J
from mailextract.errors import InstanceNotFound, JobNotFound, RuntimeUnavailable
from mailextract.extraction.requests import StartRequest, page_limit
from mailextract.run_log import log_event
from mailextract.settings import Settings, get_settings
from mailextract.storage.jobs import JobStore, move_status, retries_view
from mailextract.storage.keys import validate_connection_id
from mailextract.storage.mail_index import MailIndex
from mailextract.vault import CredentialVault

log = logging.getLogger("mailextract.extraction")

SINGLE_ORCHESTRATOR = "extract_mailbox"
BATCH_ORCHESTRATOR = "extract_batch"
PROGRESS_FIELDS = ("messages_extracted", "folders_done", "folders_total", "pages_done",
                   "attachments_saved", "current_folder")


class Orchestrations(Protocol):
    async def start(self, orchestrator: str, instance_id: str, payload: dict[str, Any]) -> None: ...
    async def raise_event(self, instance_id: str, name: str, payload: Any = None) -> None: ...
    async def terminate(self, instance_id: str, reason: str) -> None: ...
    async def runtime_status(self, instance_id: str) -> str | None: ...
    async def purge(self, instance_id: str) -> int: ...


def status_url(base_url: str, connection_id: str) -> str:
    return f"{base_url}/api/emails/extract/status/{quote(connection_id, safe='')}"


def single_instance_id(run_id: str) -> str:
    return f"extract-{run_id}"


START_FAILED = {"code": "start_failed",
                "message": "the Durable Functions runtime did not accept the run's orchestration; nothing was read"}


def fail_unstarted(jobs: JobStore, connection_id: str, run_id: str, error: dict[str, str]) -> dict[str, Any] | None:
    """Fail a run that is still `pending` under `run_id` (its orchestration never began); the
    failed row, or None when there was no such run."""
    return move_status(jobs, connection_id, run_id, J.FAILED, only_from=(J.PENDING,), error=error)


async def start_orchestration(orchestrations: Orchestrations, orchestrator: str, instance_id: str,
                              payload: dict[str, Any], fail: Callable[[], None]) -> None:
    """Start an orchestration whose job row is stored; if the runtime refuses, call `fail`
    (which marks the row failed) and raise RuntimeUnavailable."""
    try:
        await orchestrations.start(orchestrator, instance_id, payload)
    except Exception as exc:
        log.warning("the runtime refused to start %s: %s: %s", instance_id, type(exc).__name__, exc)
        try:
            await asyncio.to_thread(fail)
        except Exception:  # storage is down too: the row stays pending, which the user can cancel
            log.exception("could not mark %s failed after its start was refused", instance_id)
        raise RuntimeUnavailable("the Durable Functions runtime did not accept the run, which is marked failed; "
                                 "start it again later") from None


# Runtime statuses after which an orchestration does nothing more: the ones the extension purges.
ENDED_RUNTIME_STATUSES = ("Completed", "Failed", "Terminated", "Canceled")


async def forget_previous_instance(orchestrations: Orchestrations, previous: dict[str, Any] | None,
                                   instance_id: str) -> None:
    """Purge the history of a connection's previous run once a new run of it has started: each run
    has an orchestration instance of its own (`extract-{run_id}`, `sync-{run_id}`), and a connection
    syncing every minute would otherwise leave one a minute in the task hub. Only an instance that
    has ended is purged (an extension before 3.9.1 purges a running one); one still ending is left,
    and so is everything when the runtime cannot be asked (best effort: the run itself is started)."""
    old = (previous or {}).get("instance_id")
    if not old or old == instance_id:
        return
    try:
        if await orchestrations.runtime_status(old) in ENDED_RUNTIME_STATUSES:
            await orchestrations.purge(old)
    except Exception as exc:
        log.info("the history of %s was left in place: %s: %s", old, type(exc).__name__, exc)


def child_connection_id(batch_id: str, index: int) -> str:
    return f"{batch_id}-{index:04d}"


def run_view(job: dict[str, Any]) -> dict[str, Any]:
    view = {
        "connection_id": job["connection_id"],
        "kind": job.get("kind", "extraction"),
        "user_upn": job.get("user_upn"),
        "status": job["status"],
        "progress": {name: job.get(name, 0 if name != "current_folder" else None) for name in PROGRESS_FIELDS},
        "created_at": job["created_at"],
        "updated_at": job["updated_at"],
        "error": job.get("error"),
    }
    if job.get("parent_batch_id"):
        view["batch_id"] = job["parent_batch_id"]
    if retries := retries_view(job):
        view["retries"] = retries
    if job.get("mailboxes"):
        view["mailboxes"] = job["mailboxes"]
        view["progress"]["messages_deleted"] = job.get("messages_deleted", 0)
    return view


def email_view(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": record["id"], "subject": record.get("subject"),
        "from": {"address": record.get("from_address"), "name": record.get("from_name")},
        "to": record.get("to") or [], "cc": record.get("cc") or [],
        "received_at": record.get("received_at"), "sent_at": record.get("sent_at"),
        "folder": record.get("folder"), "is_read": record.get("is_read"),
        "has_attachments": record.get("has_attachments"), "importance": record.get("importance"),
        "conversation_id": record.get("conversation_id"), "preview": record.get("preview"),
        "body_blob": record.get("body_blob"), "body_offset": record.get("body_offset"),
        "body_length": record.get("body_length"), "body_format": record.get("body_format"),
        "attachments": record.get("attachments") or [],
        "deleted_at": record.get("deleted_at"),
    }


class ExtractionService:
    def __init__(self, orchestrations: Orchestrations, *, settings: Settings | None = None,
                 jobs: JobStore | None = None, index: MailIndex | None = None,
                 vault: CredentialVault | None = None):
        self.orchestrations = orchestrations
        self.settings = settings or get_settings()
        self.jobs = jobs or JobStore(self.settings)
        self.index = index or MailIndex(self.settings)
        self.vault = vault or CredentialVault(self.settings)

    async def _io(self, fn, *args, **kwargs):
        """Storage SDK calls are blocking: keep them off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _job(self, connection_id: str) -> dict[str, Any]:
        validate_connection_id(connection_id, allow_reserved=True)
        job = await self._io(self.jobs.get, connection_id)
        if job is None:
            raise JobNotFound(f"no extraction run for connection '{connection_id}'")
        return job

    async def _transition(self, connection_id: str, action: str, new_status: str) -> dict[str, Any]:
        """Check and apply a user transition atomically against the stored status."""
        def mutate(row: dict[str, Any]):
            J.require_transition(action, row["status"], f"the run of connection '{connection_id}'")
            row.update(status=new_status, updated_at=J.utcnow_iso())
        validate_connection_id(connection_id, allow_reserved=True)
        job = await self._io(self.jobs.update, connection_id, mutate)
        if job is None:
            raise JobNotFound(f"no extraction run for connection '{connection_id}'")
        return job

    async def _wake(self, instance_id: str, event: str) -> None:
        """Events only wake an orchestration; the stored status is the truth. One that does not
        exist yet reads that status when it starts."""
        try:
            await self.orchestrations.raise_event(instance_id, event)
        except InstanceNotFound:
            pass

    # --- single mailbox --------------------------------------------------------------------
    async def start(self, connection_id: str, body: Any, base_url: str) -> dict[str, Any]:
        validate_connection_id(connection_id)
        request = StartRequest.parse(body)
        credential = await self._io(self.vault.reference_for, request.config)
        run_id = uuid.uuid4().hex
        now = J.utcnow_iso()
        record = {"user_upn": request.user_upn, "status": J.PENDING, "run_id": run_id,
                  "instance_id": single_instance_id(run_id), "options": request.options.to_json(),
                  "credential": credential, "checkpoint": None, "error": None,
                  "created_at": now, "updated_at": now}
        previous = await self._io(self.jobs.get, connection_id)
        try:
            await self._io(self.jobs.create_run, connection_id, record)
        except Exception:
            await self._io(self.vault.forget, credential)
            raise
        def fail() -> None:
            fail_unstarted(self.jobs, connection_id, run_id, START_FAILED)
            self.vault.forget(credential)
        await start_orchestration(self.orchestrations, SINGLE_ORCHESTRATOR, record["instance_id"],
                                  {"connection_id": connection_id, "run_id": run_id}, fail)
        await forget_previous_instance(self.orchestrations, previous, record["instance_id"])
        return {"connection_id": connection_id, "status": J.PENDING,
                "status_url": status_url(base_url, connection_id)}

    async def pause(self, connection_id: str) -> dict[str, Any]:
        job = await self._transition(connection_id, "pause", J.PAUSING)
        await self._wake(job["instance_id"], "pause")
        log_event("run.pause_requested", connection_id=connection_id, mailbox=job.get("user_upn"))
        return {"connection_id": connection_id, "status": J.PAUSING}

    async def resume(self, connection_id: str) -> dict[str, Any]:
        job = await self._transition(connection_id, "continue", J.IN_PROGRESS)
        await self._wake(job["instance_id"], "continue")
        log_event("run.resumed", connection_id=connection_id, mailbox=job.get("user_upn"),
                  messages=job.get("messages_extracted", 0))
        return {"connection_id": connection_id, "status": J.IN_PROGRESS}

    async def cancel(self, connection_id: str) -> dict[str, Any]:
        job = await self._transition(connection_id, "cancel", J.CANCELLED)
        await self.orchestrations.terminate(job["instance_id"], "cancelled by the user")
        await self._io(self.vault.forget_for_run, job)
        log_event("run.cancelled", connection_id=connection_id, mailbox=job.get("user_upn"),
                  messages=job.get("messages_extracted", 0))
        return {"connection_id": connection_id, "status": J.CANCELLED}

    async def status(self, connection_id: str) -> dict[str, Any]:
        return run_view(await self._job(connection_id))

    async def result(self, connection_id: str, limit: str | None, cursor: str | None) -> dict[str, Any]:
        size = page_limit(limit)
        job = await self._job(connection_id)
        records, next_cursor = await self._io(self.index.page, connection_id, size, cursor)
        return {"connection_id": connection_id, "status": job["status"],
                "messages_extracted": job.get("messages_extracted", 0),
                "emails": [email_view(r) for r in records], "next_cursor": next_cursor}
