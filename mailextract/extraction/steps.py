"""The steps of one mailbox extraction run, as activities call them.

A run is: `begin` (list the mailbox's folders, choose the ones asked for, store the plan),
then `extract_page` until done (fetch one page of one folder from Graph, store bodies and
attachments in Blob storage, then the index rows in Table storage, then advance the
checkpoint), then `finish`. The checkpoint (folder index + Graph cursor) lives in the job row
and moves only after the page it covers is stored, with a compare-and-set on the checkpoint
itself: a page run twice (activities are at-least-once) stores the same rows again and moves
the checkpoint once. Pause and continue take effect at these page boundaries.

Every step names the run it belongs to (`run_id`); a step of an older run of the same
connection does nothing.

Errors a retry cannot fix (unknown mailbox, access denied, bad credentials, a folder that does
not exist) end the run `failed` with Graph's reason; transient ones (throttling beyond the
bounded wait, Graph unavailable) propagate so the orchestrator can retry the step.
"""
from __future__ import annotations

import tempfile
import time
from typing import Any, Callable

from mailextract import jobs as J
from mailextract.errors import (AccessDenied, AuthenticationFailed, GraphError, InvalidRequest,
                                MailExtractionError, MissingCredentials)
from mailextract.graph import GraphClient
from mailextract.graph.credentials import GraphCredentials
from mailextract.graph.models import MailFolder
from mailextract.run_log import log_event
from mailextract.settings import Settings, get_settings
from mailextract.storage.jobs import JobStore
from mailextract.storage.mail_blobs import MailBlobs, attachment_blob_name, body_blob_name
from mailextract.storage.mail_index import MailIndex
from mailextract.vault import CredentialVault

PERMANENT_ERRORS = (GraphError, AccessDenied, AuthenticationFailed, MissingCredentials, InvalidRequest)
MESSAGE_SELECT = ("id", "subject", "from", "sender", "toRecipients", "ccRecipients", "receivedDateTime",
                  "sentDateTime", "hasAttachments", "isRead", "importance", "conversationId",
                  "internetMessageId", "bodyPreview", "body", "parentFolderId", "categories")
WELL_KNOWN = {"inbox": "inbox", "sentitems": "sent items", "deleteditems": "deleted items",
              "drafts": "drafts", "junkemail": "junk email", "archive": "archive"}


def _find_folder(folders: list[MailFolder], name: str) -> MailFolder:
    """By id, else exact path, else well-known name, else display name (which must be unique)."""
    key = name.strip().strip("/").lower()
    target = WELL_KNOWN.get(key.replace(" ", ""), key)
    for matches in ([f for f in folders if f.id == name],
                    [f for f in folders if f.path.lower() in (key, target)],
                    [f for f in folders if f.display_name.lower() in (key, target)]):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            paths = ", ".join(f.path for f in matches)
            raise InvalidRequest(f"folder '{name}' is ambiguous ({paths}); give its path", field="options.folders")
    raise InvalidRequest(f"folder '{name}' was not found in the mailbox", field="options.folders")


def select_folders(folders: list[MailFolder], wanted: tuple[str, ...] | None) -> list[MailFolder]:
    """The folders to extract, in the mailbox's order; a named folder brings its subfolders.

    Well-known names (inbox, sentitems...) are matched through the English display names.
    """
    if not wanted:
        return list(folders)
    chosen = [_find_folder(folders, name).path.lower() for name in wanted]
    return [f for f in folders if any(f.path.lower() == p or f.path.lower().startswith(p + "/") for p in chosen)]


def message_record(message: dict[str, Any], *, user_upn: str, folder_path: str, run_id: str, body_blob: str,
                   body_format: str, attachments: list[dict[str, Any]]) -> dict[str, Any]:
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
        "body_format": body_format,
        "body_chars": len(body.get("content") or ""),
        "attachments": attachments,
        "run_id": run_id,
        "extracted_at": J.utcnow_iso(),
    }


class ExtractionSteps:
    def __init__(self, *, settings: Settings | None = None, jobs: JobStore | None = None,
                 index: MailIndex | None = None, blobs: MailBlobs | None = None,
                 vault: CredentialVault | None = None,
                 graph: Callable[[GraphCredentials], GraphClient] | None = None):
        self.settings = settings or get_settings()
        self.jobs = jobs or JobStore(self.settings)
        self.index = index or MailIndex(self.settings)
        self.blobs = blobs or MailBlobs(self.settings)
        self.vault = vault or CredentialVault(self.settings)
        self.graph = graph or (lambda creds: GraphClient.for_credentials(creds, self.settings))

    # --- helpers -------------------------------------------------------------------------
    def _job(self, connection_id: str, run_id: str) -> dict[str, Any] | None:
        job = self.jobs.get(connection_id)
        return job if job is not None and job.get("run_id") == run_id else None

    def _client(self, job: dict[str, Any]) -> GraphClient:
        return self.graph(self.vault.credentials(job["credential"]))

    def _set(self, connection_id: str, run_id: str, **fields: Any) -> dict[str, Any] | None:
        def mutate(row: dict[str, Any]):
            if row.get("run_id") != run_id:
                return False
            row.update(fields, updated_at=J.utcnow_iso())
        return self.jobs.update(connection_id, mutate)

    def _set_status(self, connection_id: str, run_id: str, status: str, *, only_from: tuple[str, ...],
                    **fields: Any) -> bool:
        changed = []

        def mutate(row: dict[str, Any]):
            if row.get("run_id") != run_id or row.get("status") not in only_from:
                return False
            row.update(fields, status=status, updated_at=J.utcnow_iso())
            changed.append(True)
        self.jobs.update(connection_id, mutate)
        return bool(changed)

    def fail(self, connection_id: str, run_id: str, error: MailExtractionError | dict[str, str]) -> None:
        body = error if isinstance(error, dict) else {"code": error.code, "message": str(error)}
        if self._set_status(connection_id, run_id, J.FAILED, only_from=J.ACTIVE, error=body):
            log_event("run.failed", connection_id=connection_id, run_id=run_id, error=body["code"])
            self._forget_credential(connection_id)

    def _forget_credential(self, connection_id: str) -> None:
        """A finished single run no longer needs its stored secret (a batch's runs share the
        batch's, which the batch forgets when it ends)."""
        job = self.jobs.get(connection_id) or {}
        if not job.get("parent_batch_id"):
            self.vault.forget(job.get("credential"))

    # --- the steps -----------------------------------------------------------------------
    def begin(self, connection_id: str, run_id: str) -> dict[str, Any]:
        job = self._job(connection_id, run_id)
        if job is None or job["status"] in J.FINISHED:
            return {"proceed": False}
        options = J.ExtractionOptions.from_json(job["options"])
        try:
            folders = select_folders(self._client(job).list_folders(job["user_upn"]), options.folders)
        except PERMANENT_ERRORS as exc:
            self.fail(connection_id, run_id, exc)
            return {"proceed": False}
        plan = [{"id": f.id, "path": f.path, "total": f.total_count} for f in folders]
        checkpoint = job.get("checkpoint") or {}
        if checkpoint.get("plan") is None:  # begin may run twice: keep the first plan
            self._set(connection_id, run_id, checkpoint={"plan": plan, "folder": 0, "cursor": None},
                      folders_total=len(plan), messages_total_estimate=sum(f["total"] for f in plan))
        self._set_status(connection_id, run_id, J.IN_PROGRESS, only_from=(J.PENDING,))
        log_event("run.started", connection_id=connection_id, run_id=run_id, mailbox=job["user_upn"],
                  folders=len(plan))
        current = self.jobs.get(connection_id) or {}
        return {"proceed": current.get("status") in J.ACTIVE, "status": current.get("status"),
                "folders_total": len(plan)}

    def extract_page(self, connection_id: str, run_id: str) -> dict[str, Any]:
        started = time.monotonic()
        job = self._job(connection_id, run_id)
        if job is None or job["status"] in J.FINISHED:
            return {"done": True, "stopped": True}
        checkpoint = job["checkpoint"]
        plan, index = checkpoint["plan"], checkpoint["folder"]
        if index >= len(plan):
            return {"done": True, "messages_extracted": job.get("messages_extracted", 0)}
        options = J.ExtractionOptions.from_json(job["options"])
        folder = plan[index]
        upn = job["user_upn"]
        try:
            client = self._client(job)
            cursor = checkpoint["cursor"] or client.messages_cursor(
                folder["id"], received_after=options.received_after, received_before=options.received_before,
                select=MESSAGE_SELECT, body_type=options.body_format)
            page = client.list_messages_page(upn, cursor)
            records = self._store_page(client, job, folder, page.items, options)
        except PERMANENT_ERRORS as exc:
            self.fail(connection_id, run_id, exc)
            return {"done": True, "failed": True}

        next_checkpoint = ({"plan": plan, "folder": index, "cursor": page.next_cursor} if page.next_cursor
                           else {"plan": plan, "folder": index + 1, "cursor": None})
        moved = []

        def advance(row: dict[str, Any]):
            if row.get("run_id") != run_id or row.get("checkpoint") != checkpoint:
                return False  # another try of this page already moved it
            row["checkpoint"] = next_checkpoint
            row["messages_extracted"] = row.get("messages_extracted", 0) + len(records)
            row["attachments_saved"] = row.get("attachments_saved", 0) + sum(len(r["attachments"]) for r in records)
            row["pages_done"] = row.get("pages_done", 0) + 1
            row["folders_done"] = next_checkpoint["folder"]
            row["current_folder"] = folder["path"]
            row["updated_at"] = J.utcnow_iso()
            if row["status"] == J.PENDING:  # continued before it ever began
                row["status"] = J.IN_PROGRESS
            moved.append(True)
        row = self.jobs.update(connection_id, advance) or job
        if moved:
            log_event("run.page_stored", connection_id=connection_id, run_id=run_id, mailbox=upn,
                      folder=folder["path"], messages=len(records), total=row.get("messages_extracted"),
                      duration_ms=round((time.monotonic() - started) * 1000))
        done = row["checkpoint"]["folder"] >= len(plan)
        return {"done": done, "status": row.get("status"), "messages_extracted": row.get("messages_extracted", 0)}

    def _store_page(self, client: GraphClient, job: dict[str, Any], folder: dict[str, Any],
                    items: list[dict[str, Any]], options: J.ExtractionOptions) -> list[dict[str, Any]]:
        """Bodies and attachments first, then the index rows: a row never points at a missing blob."""
        connection_id, upn = job["connection_id"], job["user_upn"]
        bodies, records = [], []
        content_type = "text/plain; charset=utf-8" if options.body_format == "text" else "text/html; charset=utf-8"
        for message in items:
            name = body_blob_name(connection_id, message["id"], options.body_format)
            bodies.append((name, (message.get("body") or {}).get("content") or "", content_type))
            attachments = (self._store_attachments(client, connection_id, upn, message["id"])
                           if options.include_attachments and message.get("hasAttachments") else [])
            records.append(message_record(message, user_upn=upn, folder_path=folder["path"], run_id=job["run_id"],
                                          body_blob=name, body_format=options.body_format,
                                          attachments=attachments))
        self.blobs.put_bodies(bodies)
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

    def mark_paused(self, connection_id: str, run_id: str) -> bool:
        paused = self._set_status(connection_id, run_id, J.PAUSED, only_from=(J.PAUSING,))
        if paused:
            log_event("run.paused", connection_id=connection_id, run_id=run_id)
        return paused

    def finish(self, connection_id: str, run_id: str) -> dict[str, Any]:
        finished = self._set_status(connection_id, run_id, J.COMPLETED, only_from=J.ACTIVE)
        if finished:
            self._forget_credential(connection_id)
        job = self.jobs.get(connection_id) or {}
        if finished:
            log_event("run.completed", connection_id=connection_id, run_id=run_id,
                      mailbox=job.get("user_upn"), messages=job.get("messages_extracted", 0))
        return {"status": job.get("status"), "messages_extracted": job.get("messages_extracted", 0)}
