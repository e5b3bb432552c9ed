"""The connection API's operations: create, list, get, replace, delete and test a connection.

The HTTP triggers parse the request, call one method here and turn the result (or a typed error)
into JSON. Storage calls are blocking SDK calls and run in threads. A secret given in `config` is
encrypted into the credential vault before the record is written; the record and every answer
carry only a reference, and answers show the secret as "set" or "not set".

Deleting a connection removes its record and its vault entry; what its syncs stored (messages,
blobs, the run row in ExtractionJobs) stays, as for extraction runs (DELETE emails/extract/{id}
removes that). Delete is refused (409) while a sync or extraction of the connection is running, and
so is replacing the credentials, because a running sync reads them.

A connection test waits on Graph, which may be slow or unreachable: its Graph calls run on a pool
of their own (GRAPH_TEST_THREADS), never on the threads the storage calls of every route share
(the event loop's default executor, a handful of threads in the Python worker), and the test
answers within TEST_ANSWER_SECONDS whatever Graph does, naming the mailboxes Graph did not answer
for (`graph_timeout`). Sixteen tests waiting on Graph then delay no other route.
"""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

from mailextract import jobs as J
from mailextract.connections.requests import ConnectionRequest
from mailextract.connections.schedule import next_due, to_iso
from mailextract.connections.store import ConnectionStore
from mailextract.errors import (AuthenticationFailed, ConnectionExists, EncryptionKeyMissing, JobConflict,
                                JobNotFound, MailExtractionError, MissingCredentials)
from mailextract.graph.auth import TokenEndpointUnavailable
from mailextract.graph.client import GraphClient
from mailextract.graph.credentials import GraphCredentials
from mailextract.settings import Settings, get_settings
from mailextract.storage.jobs import JobStore
from mailextract.storage.keys import validate_connection_id
from mailextract.vault import CredentialVault

IsActive = Callable[[str], Awaitable[bool]]
# Failures of the credentials themselves (not of one mailbox): every mailbox fails with them.
CREDENTIAL_ERRORS = (AuthenticationFailed, MissingCredentials, EncryptionKeyMissing, TokenEndpointUnavailable)
TEST_MAX_WAIT_SECONDS = 20.0  # a test answers an HTTP request: retry 429/5xx for at most this long
TEST_ANSWER_SECONDS = 25.0  # ... and answers within this long, whatever Graph does
TEST_PARALLEL_MAILBOXES = 8
GRAPH_TEST_THREADS = 16


@functools.cache
def _graph_pool() -> ThreadPoolExecutor:
    """The threads connection tests wait on Graph in (one per process, made on first use)."""
    return ThreadPoolExecutor(GRAPH_TEST_THREADS, thread_name_prefix="connection-test")


def _graph_timeout(upn: str) -> dict[str, Any]:
    return {"user_upn": upn, "ok": False, "error": {
        "code": "graph_timeout",
        "message": f"Microsoft Graph did not answer for this mailbox within {TEST_ANSWER_SECONDS:g} s "
                   "(unreachable, or throttling for longer): try the test again later"}}


def credentials_view(reference: dict[str, Any], settings: Settings) -> dict[str, Any]:
    secret_set = reference.get("kind") == "vault" or bool(settings.outlook_client_secret)
    return {"tenant_id": reference.get("tenant_id"), "client_id": reference.get("client_id"),
            "client_secret": "set" if secret_set else "not set"}


def connection_view(record: dict[str, Any], settings: Settings) -> dict[str, Any]:
    return {
        "id": record["id"], "name": record.get("name"), "mailboxes": record["mailboxes"],
        "folders": record.get("folders"), "schedule": record["schedule"],
        "interval_seconds": record["interval_seconds"], "options": record["options"],
        "enabled": record["enabled"], "credentials": credentials_view(record.get("credential") or {}, settings),
        "created_at": record["created_at"], "updated_at": record["updated_at"],
        "last_sync_at": record.get("last_sync_at"), "last_sync_status": record.get("last_sync_status"),
        "next_sync_at": record.get("next_sync_at"),
    }


def _not_found(connection_id: str) -> JobNotFound:
    return JobNotFound(f"no connection '{connection_id}'")


class ConnectionService:
    def __init__(self, settings: Settings | None = None, store: ConnectionStore | None = None,
                 vault: CredentialVault | None = None,
                 graph: Callable[[GraphCredentials], GraphClient] | None = None, *,
                 jobs: JobStore | None = None, clock: Callable[[], datetime] | None = None):
        self.settings = settings or get_settings()
        self.store = store or ConnectionStore(self.settings)
        self.vault = vault or CredentialVault(self.settings)
        self.jobs = jobs or JobStore(self.settings)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        if graph is None:
            # A test must answer within an HTTP request: retry throttling and outages briefly only.
            test_settings = dataclasses.replace(self.settings, graph_max_total_wait_seconds=min(
                self.settings.graph_max_total_wait_seconds, TEST_MAX_WAIT_SECONDS))
            graph = lambda creds: GraphClient.for_credentials(creds, test_settings)  # noqa: E731
        self.graph = graph

    async def _io(self, fn, *args, **kwargs):
        """Storage SDK calls are blocking: keep them off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    def _view(self, record: dict[str, Any]) -> dict[str, Any]:
        return connection_view(record, self.settings)

    async def _record(self, connection_id: str) -> dict[str, Any]:
        validate_connection_id(connection_id, allow_reserved=True)
        record = await self._io(self.store.get, connection_id)
        if record is None:
            raise _not_found(connection_id)
        return record

    async def _job_active(self, connection_id: str) -> bool:
        """The default check: the connection's run row (syncs and extractions share it) is active."""
        job = await self._io(self.jobs.get, connection_id)
        return job is not None and job.get("status") in J.ACTIVE

    async def _refuse_while_active(self, connection_id: str, is_active: IsActive | None, what: str) -> None:
        if await (is_active or self._job_active)(connection_id):
            raise JobConflict(f"connection '{connection_id}' has a sync or extraction running; {what} "
                              "once it has finished (or cancel it)")

    # --- routes ----------------------------------------------------------------------------
    async def create(self, body: Any) -> dict[str, Any]:
        request = ConnectionRequest.parse(body, with_id=True)
        connection_id = request.id
        assert connection_id is not None
        if await self._io(self.store.get, connection_id) is not None:
            raise ConnectionExists(f"connection '{connection_id}' already exists")
        credential = await self._io(self.vault.reference_for, request.config)
        now = self.clock()
        record = {
            "name": request.name, "mailboxes": request.mailboxes, "folders": request.folders,
            "schedule": request.schedule, "interval_seconds": request.interval_seconds,
            "options": request.options, "enabled": request.enabled, "credential": credential,
            "created_at": to_iso(now), "updated_at": to_iso(now), "last_sync_at": None,
            "last_sync_status": None, "next_sync_at": to_iso(next_due(None, request.interval_seconds, now)),
        }
        try:
            await self._io(self.store.create, connection_id, record)
        except BaseException:
            await self._io(self.vault.forget, credential)  # never leave an orphan secret behind
            raise
        return self._view({**record, "id": connection_id})

    async def list(self) -> dict[str, Any]:
        return {"connections": [self._view(r) for r in await self._io(self.store.list)]}

    async def get(self, connection_id: str) -> dict[str, Any]:
        return self._view(await self._record(connection_id))

    async def replace(self, connection_id: str, body: Any, is_active: IsActive | None = None) -> dict[str, Any]:
        """Replace everything but the id, the sync state and, when `config` is omitted, the credentials.
        Fields left out take their defaults (name null, every folder, default options, enabled)."""
        validate_connection_id(connection_id, allow_reserved=True)
        request = ConnectionRequest.parse(body, with_id=False)
        await self._record(connection_id)
        credential = None
        if request.config is not None:
            await self._refuse_while_active(connection_id, is_active, "its credentials can be replaced")
            credential = await self._io(self.vault.reference_for, request.config)
        replaced: list[dict[str, Any] | None] = [None]
        now = self.clock()

        def mutate(record: dict[str, Any]) -> None:
            if record.get("interval_seconds") != request.interval_seconds:
                record["next_sync_at"] = to_iso(next_due(record.get("last_sync_at"), request.interval_seconds, now))
            record.update(name=request.name, mailboxes=request.mailboxes, folders=request.folders,
                          schedule=request.schedule, interval_seconds=request.interval_seconds,
                          options=request.options, enabled=request.enabled, updated_at=to_iso(now))
            replaced[0] = None
            if credential is not None:
                replaced[0] = record.get("credential")
                record["credential"] = credential

        try:
            stored = await self._io(self.store.update, connection_id, mutate)
        except BaseException:
            await self._io(self.vault.forget, credential)
            raise
        if stored is None:  # deleted meanwhile
            await self._io(self.vault.forget, credential)
            raise _not_found(connection_id)
        if replaced[0] and replaced[0] != credential:
            await self._io(self.vault.forget, replaced[0])
        return self._view(stored)

    async def delete(self, connection_id: str, is_active: IsActive | None = None) -> dict[str, Any]:
        record = await self._record(connection_id)
        await self._refuse_while_active(connection_id, is_active, "it can be deleted")
        await self._io(self.store.delete, connection_id)
        await self._io(self.vault.forget, record.get("credential"))
        return {"id": connection_id, "deleted": True}

    async def test(self, connection_id: str) -> dict[str, Any]:
        """Acquire a token and read one message (top 1) of each mailbox; report per mailbox."""
        record = await self._record(connection_id)
        mailboxes: list[str] = record["mailboxes"]

        def failed(error: MailExtractionError) -> dict[str, Any]:
            return {"id": connection_id, "ok": False, "error": error.to_dict(),
                    "mailboxes": [{"user_upn": upn, "ok": False, "error": error.to_dict()} for upn in mailboxes]}

        reference = record.get("credential") or {}
        if reference.get("kind") == "settings" and not self.settings.outlook_client_secret:
            return failed(MissingCredentials(["outlook_client_secret"], ["OUTLOOK_CLIENT_SECRET"]))
        try:
            client = self.graph(await self._io(self.vault.credentials, reference))
        except CREDENTIAL_ERRORS as exc:
            return failed(exc)

        deadline = time.monotonic() + TEST_ANSWER_SECONDS

        async def probe(upn: str) -> None:
            """Read one message id of the mailbox on the Graph pool, until the deadline at most."""
            read = functools.partial(client.list_messages_page, upn, client.messages_cursor(select="id", top=1))
            await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(_graph_pool(), read),
                                   timeout=max(0.0, deadline - time.monotonic()))

        async def check(upn: str) -> dict[str, Any]:
            try:
                await probe(upn)
            except MailExtractionError as exc:
                return {"user_upn": upn, "ok": False, "error": exc.to_dict()}
            except asyncio.TimeoutError:
                return _graph_timeout(upn)
            return {"user_upn": upn, "ok": True}

        # The first read acquires the token: a credential failure fails them all, with one request.
        try:
            await probe(mailboxes[0])
            first = {"user_upn": mailboxes[0], "ok": True}
        except CREDENTIAL_ERRORS as exc:
            return failed(exc)
        except MailExtractionError as exc:
            first = {"user_upn": mailboxes[0], "ok": False, "error": exc.to_dict()}
        except asyncio.TimeoutError:
            return {"id": connection_id, "ok": False, "mailboxes": [_graph_timeout(upn) for upn in mailboxes]}
        gate = asyncio.Semaphore(TEST_PARALLEL_MAILBOXES)

        async def gated(upn: str) -> dict[str, Any]:
            async with gate:
                return await check(upn)

        results = [first, *await asyncio.gather(*(gated(upn) for upn in mailboxes[1:]))]
        return {"id": connection_id, "ok": all(r["ok"] for r in results), "mailboxes": results}
