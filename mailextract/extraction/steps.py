"""The steps of a mailbox run, as activities call them: extractions and syncs alike.

A run is: `begin` (list each mailbox's folders, choose the ones asked for, store the plan),
then `extract_pages` calls (lanes), several at once, each fetching pages of a folder (a stream,
and the next ones of its mailbox it claims) from Graph one after the other for up to
LANE_SECONDS, storing each page through the MailWriter and advancing that stream's checkpoint
after it, until every stream is done, then `finish`. An extraction reads one mailbox; a sync
(kind "sync", started for a connection) reads each of the connection's mailboxes from their saved
deltaLinks. The checkpoint lives in the job
row: the next unstarted stream, and for each active stream its Graph cursor and full-round
marker. A stream's state moves only after the page it covers is stored, with a compare-and-set on
that state: a page run twice (activities are at-least-once) stores the same rows again and moves
the checkpoint once. A deltaLink is saved only after the last page of its round is stored. Pause
and continue take effect at these page boundaries.

Every step names the run it belongs to (`run_id`); a step of an older run of the same
connection does nothing. Errors a retry cannot fix (unknown mailbox, access denied, bad
credentials, an unknown folder) end the run `failed` with Graph's reason; transient ones
(throttling beyond the bounded wait, Graph unavailable) propagate, and the lane's activity returns
them to the orchestrator, which retries.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Callable

from mailextract import jobs as J
from mailextract.errors import (AccessDenied, AuthenticationFailed, GraphError, InvalidRequest, MailExtractionError,
                                MissingCredentials)
from mailextract.extraction.mail_writer import MailWriter
from mailextract.extraction.pages import LaneReader, fetch_page, store_page
from mailextract.extraction.planning import (WAIT, arrange, claim, deleted_folders, folders_done, folders_in,
                                             needs_split, next_claim, skip_known_empty, streams_for, time_windows,
                                             window_count)
from mailextract.graph import GraphClient
from mailextract.graph.credentials import GraphCredentials
from mailextract.run_log import log_event
from mailextract.settings import Settings, get_settings
from mailextract.storage.jobs import JobStore, move_status
from mailextract.storage.mail_blobs import MailBlobs
from mailextract.storage.mail_index import MailIndex
from mailextract.storage.run_plans import RunPlans
from mailextract.storage.sync_state import SyncStateStore
from mailextract.vault import CredentialVault

PERMANENT_ERRORS = (GraphError, AccessDenied, AuthenticationFailed, MissingCredentials, InvalidRequest)
# A lane (one activity, orchestrators/extraction.py) starts a further page only this soon after it
# began: long enough that waves are few (each ends when its slowest lane does, about one page after
# this), short enough that a lane ends far within the host's functionTimeout.
LANE_SECONDS = 60.0
# Every activity of a run is done well within host.json's functionTimeout (10 minutes): its Graph
# calls wait and retry only until this long after it began, then fail transiently (throttled or
# graph_unavailable), and the orchestration calls the step again after a durable timer.
ACTIVITY_GRAPH_SECONDS = 240.0


def index_was_empty(job: dict[str, Any]) -> bool:
    """The connection had no index row when this run began. Then a round that was not restarted
    stored every row of its folder itself, so its sweep has nothing to find: the first run of a
    connection skips reading its folders' rows back (17 s of a 100,000-message run)."""
    return bool((job.get("checkpoint") or {}).get("index_was_empty"))


def mailboxes_of(job: dict[str, Any]) -> list[str]:
    return job.get("mailboxes") or [job["user_upn"]]


class ExtractionSteps:
    def __init__(self, *, settings: Settings | None = None, jobs: JobStore | None = None,
                 index: MailIndex | None = None, blobs: MailBlobs | None = None,
                 vault: CredentialVault | None = None, plans: RunPlans | None = None,
                 sync_state: SyncStateStore | None = None,
                 graph: Callable[[GraphCredentials], GraphClient] | None = None,
                 on_finished: Callable[[dict[str, Any]], None] | None = None):
        self.settings = settings or get_settings()
        self.jobs = jobs or JobStore(self.settings)
        self.writer = MailWriter(index or MailIndex(self.settings), blobs or MailBlobs(self.settings))
        self.vault = vault or CredentialVault(self.settings)
        self.plans = plans or RunPlans(self.settings)
        self.sync_state = sync_state or SyncStateStore(self.settings)
        self.graph = graph or (lambda creds: GraphClient.for_credentials(creds, self.settings))
        self.on_finished = on_finished or (lambda job: None)

    # --- helpers -------------------------------------------------------------------------
    def _job(self, connection_id: str, run_id: str) -> dict[str, Any] | None:
        job = self.jobs.get(connection_id)
        return job if job is not None and job.get("run_id") == run_id else None

    def _client(self, job: dict[str, Any]) -> GraphClient:
        return self.graph(self.vault.credentials(job["credential"]))

    def _ended(self, job: dict[str, Any]) -> None:
        self.vault.forget_for_run(job)
        self.on_finished(job)

    def fail(self, connection_id: str, run_id: str, error: MailExtractionError | dict[str, str]) -> None:
        body = error if isinstance(error, dict) else {"code": error.code, "message": str(error)}
        job = move_status(self.jobs, connection_id, run_id, J.FAILED, only_from=J.ACTIVE, error=body)
        if job:
            log_event("run.failed", connection_id=connection_id, run_id=run_id, error=body["code"])
            self._ended(job)

    # --- the steps -----------------------------------------------------------------------
    def begin(self, connection_id: str, run_id: str) -> dict[str, Any]:
        job = self._job(connection_id, run_id)
        if job is None or job["status"] in J.FINISHED:
            return {"proceed": False}
        if job.get("checkpoint") is None:  # begin may run twice: keep the first plan
            # nothing is stored before the checkpoint exists, so a second try sees the same answer
            index_was_empty = self.writer.index.is_empty(connection_id)
            try:
                streams, retired = self._plan(connection_id, job)
            except PERMANENT_ERRORS as exc:
                self.fail(connection_id, run_id, exc)
                return {"proceed": False}
            name = self.plans.put(connection_id, run_id, streams)

            checkpoint = {"plan": name, "next": 0, "active": {}, "index_was_empty": index_was_empty}
            if index_was_empty:
                skip_known_empty(streams, checkpoint)

            def mutate(row: dict[str, Any]):
                if row.get("run_id") != run_id or row.get("checkpoint") is not None:
                    return False
                row.update(checkpoint=checkpoint, folders_total=folders_in(streams),
                           folders_done=folders_done(streams, checkpoint),
                           messages_deleted=row.get("messages_deleted", 0) + retired, updated_at=J.utcnow_iso())
            self.jobs.update(connection_id, mutate)
            log_event("run.started", connection_id=connection_id, run_id=run_id, kind=job.get("kind", "extraction"),
                      mailboxes=len(mailboxes_of(job)), folders=folders_in(streams), streams=len(streams))
        move_status(self.jobs, connection_id, run_id, J.IN_PROGRESS, only_from=(J.PENDING,))
        current = self.jobs.get(connection_id) or {}
        checkpoint = current.get("checkpoint") or {}
        active = sorted(int(i) for i in (checkpoint.get("active") or {}))
        plan = self.plans.get(checkpoint["plan"]) if checkpoint.get("plan") and current.get("run_id") == run_id else []
        # The orchestration runs lanes per mailbox: which mailboxes have streams, and whose each active one is.
        return {"proceed": current.get("status") in J.ACTIVE, "status": current.get("status"),
                "folders_total": current.get("folders_total", 0), "active": active,
                "mailboxes": list(dict.fromkeys(stream["upn"] for stream in plan)),
                "active_mailboxes": [plan[index]["upn"] if index < len(plan) else None for index in active]}

    def _plan(self, connection_id: str, job: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        """The run's streams, and how many messages went with folders the mailbox no longer has."""
        options = J.ExtractionOptions.from_json(job["options"])
        client = self._client(job).until(time.monotonic() + ACTIVITY_GRAPH_SECONDS)
        sync = job.get("kind") == "sync"
        streams: list[dict[str, Any]] = []
        retired = 0
        for upn in mailboxes_of(job):
            folders = client.list_folders(upn)
            saved = self.sync_state.folders(connection_id, upn) if sync else {}
            for folder_id in deleted_folders(folders, saved):
                retired += self.writer.retire_folder(connection_id, upn, folder_id, bool(job.get("purge_deleted")))
                self.sync_state.mark_folder_deleted(connection_id, upn, folder_id)
            streams += streams_for(upn, folders, options, saved=saved, sync=sync)
        return self._split(client, streams, options, job["run_id"]), retired

    def _split(self, client: GraphClient, streams: list[dict[str, Any]], options: J.ExtractionOptions,
               run_id: str) -> list[dict[str, Any]]:
        """Big folders read in full become date windows (planning.py), bounded by their oldest
        and newest message: two one-message listings per big folder."""
        def bounds(stream: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
            return (options.received_after, options.received_before) if stream["mode"] == "list" else (None, None)
        big = [position for position, stream in enumerate(streams) if needs_split(stream)]
        probes = [(position, order) for position in big for order in ("asc", "desc")]
        with ThreadPoolExecutor(4, thread_name_prefix="plan-edges") as pool:
            edges = dict(zip(probes, pool.map(
                lambda probe: self._edge(client, streams[probe[0]], *bounds(streams[probe[0]]), probe[1]), probes)))
        windows = {}
        for position in big:
            oldest, newest = edges[(position, "asc")], edges[(position, "desc")]
            if oldest is not None and newest is not None:
                after, before = bounds(streams[position])
                windows[position] = time_windows(oldest, newest, window_count(streams[position]["total"]),
                                                 after=after, before=before)
        return arrange(streams, windows, run_id) if windows else streams

    @staticmethod
    def _edge(client: GraphClient, stream: dict[str, Any], after: datetime | None, before: datetime | None,
              order: str) -> datetime | None:
        """The receivedDateTime of the folder's oldest ("asc") or newest ("desc") message, None when empty."""
        cursor = client.messages_cursor(stream["id"], received_after=after, received_before=before,
                                        select=("receivedDateTime",), top=1, orderby=f"receivedDateTime {order}")
        items = client.list_messages_page(stream["upn"], cursor).items
        return J.parse_time("receivedDateTime", items[0].get("receivedDateTime")) if items else None

    def _claim(self, connection_id: str, run_id: str, plan: list[dict[str, Any]], mailbox: str | None = None,
               read: dict[str, Any] | None = None) -> tuple[int | str | None, dict[str, Any] | None]:
        """Take the next stream to read (planning.next_claim; of `mailbox` only, when given): its
        index, WAIT, or None when all are taken; and the job row as the claim stored it. `read`:
        the row as just read, if any."""
        claimed: list[int | str] = []

        def mutate(row: dict[str, Any]):
            claimed.clear()  # mutate runs again after a conflict: keep only the attempt that sticks
            checkpoint = row.get("checkpoint")
            if row.get("run_id") != run_id or not checkpoint:
                return False
            index = next_claim(plan, checkpoint, mailbox)
            if index is None or index == WAIT:
                claimed.append(index)
                return False
            claim(checkpoint, index)
            claimed.append(index)
        row = self.jobs.update(connection_id, mutate, read=read)
        return (claimed[0] if claimed else None), row

    def extract_pages(self, connection_id: str, run_id: str, stream: int | None = None, *,
                      pages: int = 1, mailbox: str | None = None, seconds: float = LANE_SECONDS) -> dict[str, Any]:
        """Up to `pages` pages, one after the other, in one lane (activity): of `stream`, and when a
        stream ends, of the next one the lane claims (`stream` None claims first), of `mailbox` only
        when given. The lane sends its Graph requests one at a time, fetching a stream's next page
        while it stores the current one (pages.py): the orchestration runs at most 4 lanes of a
        mailbox at once, so Graph sees at most 4 requests for it however many instances run them.

        Each page is stored and checkpointed on its own, so a lane tried again resumes after the
        last page it stored. The lane ends when the run stops, fails or is pausing (pause takes
        effect at the next page boundary), when no stream can be claimed, or once `seconds` have
        passed (no page is read ahead after that). The result is the last page's (or the last
        claim's), with `pages`: the pages it read, and `streams_ended`: how many streams it finished.
        """
        started = time.monotonic()
        done = ended = 0
        reader = LaneReader(self._client, deadline=started + ACTIVITY_GRAPH_SECONDS)
        try:
            while True:
                read_on = done + 1 < pages and time.monotonic() - started < seconds
                page = self._one_page(connection_id, run_id, stream, mailbox, reader, read_on)
                if page.get("wait") or page.get("exhausted"):  # no stream was claimed
                    return {**page, "pages": done, "streams_ended": ended}
                done += 1
                ended += bool(page.get("stream_done"))
                if not read_on or page.get("failed") or page.get("stopped") or page.get("status") in J.PAUSE_STATUSES:
                    return {**page, "pages": done, "streams_ended": ended}
                stream = page.get("next_stream") if page.get("stream_done") else page["stream"]
        finally:
            reader.close()

    def extract_page(self, connection_id: str, run_id: str, stream: int | None = None, *,
                     mailbox: str | None = None) -> dict[str, Any]:
        """One page of one stream; `stream` None claims the next unstarted stream (of `mailbox`) first."""
        reader = LaneReader(self._client, deadline=time.monotonic() + ACTIVITY_GRAPH_SECONDS)
        try:
            return self._one_page(connection_id, run_id, stream, mailbox, reader, read_on=False)
        finally:
            reader.close()

    def _one_page(self, connection_id: str, run_id: str, stream: int | None, mailbox: str | None,
                  reader: LaneReader, read_on: bool) -> dict[str, Any]:
        """One page of a stream (claimed first when `stream` is None); `read_on`: the lane reads
        on after this page, so fetch the stream's next page (or, at its end, claim the next stream
        and fetch that one's first page) while this one is stored.

        Several streams of a run page at once (one activity each); each stream's state moves
        with its own compare-and-set, so concurrent pages of other streams never conflict.
        """
        started = time.monotonic()
        job = self._job(connection_id, run_id)
        if job is None or job["status"] in J.FINISHED:
            return {"stream_done": True, "stopped": True}
        plan = self.plans.get(job["checkpoint"]["plan"])
        if stream is None:
            stream, claimed = self._claim(connection_id, run_id, plan, mailbox, read=job)
            if stream is None:
                return {"exhausted": True, "status": job["status"]}
            if stream == WAIT:
                return {"wait": True, "status": job["status"]}
            job = claimed or job
        key = str(stream)
        state = (job["checkpoint"].get("active") or {}).get(key)
        if state is None:  # finished by an earlier try of this activity
            return {"stream": stream, "stream_done": True, "status": job["status"]}
        folder = plan[stream]
        try:
            client = reader.client(job)
            fetched = reader.take(stream, state) or fetch_page(client, job, folder, stream, state)
            next_state, mark = fetched.next_state, fetched.mark
            following = None  # claimed already: the stream the lane goes on with when this one ends here
            if read_on and next_state is not None:
                reader.read_ahead(stream, next_state, lambda: fetch_page(client, job, folder, stream, next_state))
            elif read_on:
                following = self._claim_ahead(connection_id, run_id, plan, mailbox, reader, client, job)
            records, removed = store_page(self.writer, self.sync_state, client, job, folder, fetched,
                                          clean_first_run=index_was_empty(job))
        except PERMANENT_ERRORS as exc:
            self.fail(connection_id, run_id, exc)
            return {"stream": stream, "stream_done": True, "failed": True}
        moved = []

        def advance(row: dict[str, Any]):
            moved.clear()  # mutate runs again after a conflict: keep only the attempt that sticks
            active = row["checkpoint"]["active"]
            if row.get("run_id") != run_id or active.get(key) != state:
                return False  # another try of this page already moved it
            if next_state is None:
                del active[key]
            else:
                active[key] = next_state
            if mark:
                row["checkpoint"].setdefault("marks", {})[key] = mark
            row["messages_extracted"] = row.get("messages_extracted", 0) + len(records)
            row["messages_deleted"] = row.get("messages_deleted", 0) + removed
            row["attachments_saved"] = row.get("attachments_saved", 0) + sum(len(r["attachments"]) for r in records)
            row["pages_done"] = row.get("pages_done", 0) + 1
            row["folders_done"] = folders_done(plan, row["checkpoint"])
            row["current_folder"] = folder["path"]
            row["updated_at"] = J.utcnow_iso()
            if row["status"] == J.PENDING:  # continued before it ever began
                row["status"] = J.IN_PROGRESS
            moved.append(True)
        row = self.jobs.update(connection_id, advance) or job
        if moved:
            log_event("run.page_stored", connection_id=connection_id, run_id=run_id, mailbox=folder["upn"],
                      folder=folder["path"], messages=len(records), total=row.get("messages_extracted"),
                      duration_ms=round((time.monotonic() - started) * 1000))
        return {"stream": stream, "stream_done": key not in row["checkpoint"]["active"], "status": row.get("status"),
                "messages_extracted": row.get("messages_extracted", 0), "next_stream": following}

    def _claim_ahead(self, connection_id: str, run_id: str, plan: list[dict[str, Any]], mailbox: str | None,
                     reader: LaneReader, client: GraphClient, job: dict[str, Any]) -> int | None:
        """The lane's stream ends with the page being stored: claim the next one of the mailbox now
        and fetch its first page meanwhile, so Graph is not idle while the last page is stored. The
        claimed stream's index, or None (nothing to claim now: the lane claims again after)."""
        index, row = self._claim(connection_id, run_id, plan, mailbox)
        if not isinstance(index, int) or row is None:
            return None
        state = row["checkpoint"]["active"][str(index)]
        reader.read_ahead(index, state, lambda: fetch_page(client, job, plan[index], index, state))
        return index

    def _settle_split_folders(self, job: dict[str, Any]) -> None:
        """Every window of a split folder is stored: sweep the rows they did not store (messages
        gone before their window was read), then save the deltaLink its mark took. Idempotent.

        Skipped when the index was empty as the run began (index_was_empty)."""
        connection_id, checkpoint = job["connection_id"], job.get("checkpoint") or {}
        plan = self.plans.get(checkpoint["plan"]) if checkpoint.get("plan") else []
        removed = 0
        for index, stream in enumerate(plan):
            link = (checkpoint.get("marks") or {}).get(str(index))
            if stream["mode"] != "mark" or not link:
                continue
            if not index_was_empty(job):
                removed += self.writer.sweep(connection_id, stream, stream["round"], bool(job.get("purge_deleted")))
            self.sync_state.save_delta_link(connection_id, stream["upn"], stream["id"], stream["path"], link,
                                            ids_only=True)
        if removed:
            def count(row: dict[str, Any]):
                if row.get("run_id") != job["run_id"]:
                    return False
                row["messages_deleted"] = row.get("messages_deleted", 0) + removed
            self.jobs.update(connection_id, count)

    def _erase_purged_bodies(self, job: dict[str, Any]) -> None:
        """A purging connection's run that stored or removed anything leaves no purged body in a pack.

        Before the run completes, so a failure here is retried with the finish step; the next
        such run would erase what this one could not anyway.
        """
        if not job.get("purge_deleted") or not (job.get("messages_deleted") or job.get("messages_extracted")):
            return
        changed = self.writer.compact_bodies(job["connection_id"])
        log_event("run.bodies_compacted", connection_id=job["connection_id"], run_id=job["run_id"], packs=changed)

    def mark_paused(self, connection_id: str, run_id: str) -> bool:
        paused = move_status(self.jobs, connection_id, run_id, J.PAUSED, only_from=(J.PAUSING,))
        if paused:
            log_event("run.paused", connection_id=connection_id, run_id=run_id,
                      messages=paused.get("messages_extracted", 0))
        return bool(paused)

    def finish(self, connection_id: str, run_id: str) -> dict[str, Any]:
        """Complete the run once every stream is done; else ask the orchestrator to resume the
        streams still active (one claimed by a try that failed before its first page)."""
        current = self._job(connection_id, run_id)
        if current and current["status"] in J.ACTIVE and (current.get("checkpoint") or {}).get("active"):
            return {"resume": True, "status": current["status"]}
        if current and current["status"] in J.ACTIVE:
            self._settle_split_folders(current)
            current = self._job(connection_id, run_id) or current
            self._erase_purged_bodies(current)
        job = move_status(self.jobs, connection_id, run_id, J.COMPLETED, only_from=J.ACTIVE)
        if job:
            log_event("run.completed", connection_id=connection_id, run_id=run_id, kind=job.get("kind", "extraction"),
                      messages=job.get("messages_extracted", 0), deleted=job.get("messages_deleted", 0))
            self._ended(job)
        job = self.jobs.get(connection_id) or {}
        return {"status": job.get("status"), "messages_extracted": job.get("messages_extracted", 0)}
