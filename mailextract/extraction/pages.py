"""One page of a stream in two halves, fetch (Graph) and store (Blob, Table), and the lane's reader
that fetches a stream's next page while the current one is being stored.

Why: a lane holds one of its mailbox's 4 Graph request slots (one_at_a_time.py). Storing a page
takes Blob and Table time during which that slot would sit idle; fetching the next page meanwhile
keeps Graph busy. Fetching changes nothing but reads Graph, so a fetched page that is not stored
(the run paused, another try of the lane moved the stream first) is dropped, and fetched again
by whoever reads that stream next. The stream's checkpoint still moves only after its page is
stored (steps.py).
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from mailextract import jobs as J
from mailextract.errors import DeltaExpired, GraphError, MailboxNotFound
from mailextract.extraction.mail_writer import MailWriter
from mailextract.graph import GraphClient
from mailextract.storage.sync_state import SyncStateStore

MARK_PAGE_SIZE = 1000  # a mark's delta round returns ids only: big pages are cheap
MESSAGE_SELECT = ("id", "subject", "from", "sender", "toRecipients", "ccRecipients", "receivedDateTime",
                  "sentDateTime", "hasAttachments", "isRead", "importance", "conversationId",
                  "internetMessageId", "bodyPreview", "body", "parentFolderId", "categories")


@dataclass
class FetchedPage:
    """A page as Graph gave it, and what storing it moves the stream to."""

    next_state: dict[str, Any] | None  # the stream's state once this page is stored; None: the stream is done
    items: list[dict[str, Any]] = field(default_factory=list)  # messages with their content
    removed_ids: list[str] = field(default_factory=list)
    sync_round: str | None = None  # the round its rows are stored under (sweeps find rows of other rounds)
    delta_link: str | None = None  # a delta round ended: saved once the page is stored
    ids_only: bool = False  # that deltaLink returns ids only (a split folder's mark took it)
    restarts: int = 0  # times the round was read again from scratch after Graph expired its state
    mark: str | None = None  # a mark's round ended: the deltaLink the run's finish saves


def fetch_page(client: GraphClient, job: dict[str, Any], stream: dict[str, Any], index: int,
               state: dict[str, Any]) -> FetchedPage:
    """The stream's page at `state` (its Graph cursor; None: the first page)."""
    options = J.ExtractionOptions.from_json(job["options"])
    cursor, sync_round, restarts = state["cursor"], state["round"], state["restarts"]
    if stream["mode"] in ("list", "window"):
        after, before = ((J.parse_time("received_after", stream["received_after"]),
                          J.parse_time("received_before", stream["received_before"]))
                         if stream["mode"] == "window" else (options.received_after, options.received_before))
        cursor = cursor or client.messages_cursor(stream["id"], received_after=after, received_before=before,
                                                  select=MESSAGE_SELECT, body_type=options.body_format)
        page = client.list_messages_page(stream["upn"], cursor)
        return FetchedPage({**state, "cursor": page.next_cursor} if page.next_cursor else None, page.items,
                           sync_round=stream.get("round"))
    if stream["mode"] == "mark":
        cursor = cursor or client.delta_cursor(stream["id"], select=("id",), page_size=MARK_PAGE_SIZE)
        try:
            page = client.delta_page(stream["upn"], stream["id"], cursor)
        except DeltaExpired:  # nothing was stored from this round: take it again
            return FetchedPage({**state, "cursor": None, "restarts": restarts + 1})
        if page.next_cursor:
            return FetchedPage({**state, "cursor": page.next_cursor})
        return FetchedPage(None, mark=page.delta_link)

    def fresh_round(restart: int) -> tuple[dict[str, Any], str]:
        return (client.delta_cursor(stream["id"], select=MESSAGE_SELECT, body_type=options.body_format),
                f"{job['run_id']}.{index}.{restart}")
    if cursor is None:
        if stream.get("delta_link"):
            cursor = client.delta_cursor(stream["id"], delta_link=stream["delta_link"], select=MESSAGE_SELECT,
                                         body_type=options.body_format)
        else:
            cursor, sync_round = fresh_round(restarts)
    ids_only = bool(stream.get("ids_only")) and not restarts  # a fresh round has content
    try:
        page = client.delta_page(stream["upn"], stream["id"], cursor)
        items = _content_of(client, stream, page.items, options) if ids_only else page.items
    except DeltaExpired:
        # The delta state expired (410 / syncStateNotFound / resyncRequired): read the folder
        # again from scratch (with content); the sweep at the end of that round makes it converge.
        restarts += 1
        cursor, sync_round = fresh_round(restarts)
        ids_only = False
        page = client.delta_page(stream["upn"], stream["id"], cursor)
        items = page.items
    next_state = {"cursor": page.next_cursor, "round": sync_round, "restarts": restarts} if page.next_cursor else None
    return FetchedPage(next_state, items, [r.id for r in page.removed], sync_round,
                       None if page.next_cursor else page.delta_link, ids_only, restarts)


def _content_of(client: GraphClient, stream: dict[str, Any], items: list[dict[str, Any]],
                options: J.ExtractionOptions) -> list[dict[str, Any]]:
    """The messages of an ids-only delta page, fetched by id (the lane's client sends them one at a
    time; the threads overlap decoding one answer with the next request); one deleted since the
    page was read is left out: the next round reports it removed."""
    def fetch(item: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return client.get_message(stream["upn"], item["id"], select=MESSAGE_SELECT, body_type=options.body_format)
        except GraphError as exc:
            if exc.status == 404 and not isinstance(exc, MailboxNotFound):
                return None
            raise
    with ThreadPoolExecutor(2, thread_name_prefix="delta-content") as pool:
        return [m for m in pool.map(fetch, items) if m is not None]


def store_page(writer: MailWriter, sync_state: SyncStateStore, client: GraphClient, job: dict[str, Any],
               stream: dict[str, Any], page: FetchedPage, *, clean_first_run: bool) -> tuple[list[dict[str, Any]], int]:
    """Store a fetched page: its records (bodies and attachments first), its removals and, when it
    ends a delta round, the sweep of rows the round did not see and the round's deltaLink.
    `clean_first_run`: the connection's index was empty as the run began, so a round that was not
    restarted stored every row of its folder itself and needs no sweep."""
    if stream["mode"] == "mark":  # ids only: the windows store the folder's messages
        return [], 0
    connection_id, run_id = job["connection_id"], job["run_id"]
    options = J.ExtractionOptions.from_json(job["options"])
    purge = bool(job.get("purge_deleted"))
    records = writer.store(client, connection_id, stream, page.items, options, run_id, page.sync_round)
    if stream["mode"] != "delta":
        return records, 0
    removed = writer.remove(connection_id, stream, page.removed_ids, purge)
    if page.next_state is None:
        if page.sync_round and not (page.restarts == 0 and clean_first_run):
            removed += writer.sweep(connection_id, stream, page.sync_round, purge)
        sync_state.save_delta_link(connection_id, stream["upn"], stream["id"], stream["path"], page.delta_link,
                                   ids_only=page.ids_only)
    return records, removed


class LaneReader:
    """What the pages of one lane (activity) share: one Graph client sending one request at a
    time, and the read-ahead (the stream's next page, fetched while the current one is stored)."""

    def __init__(self, make_client: Callable[[dict[str, Any]], GraphClient], *, deadline: float):
        self._make_client = make_client
        self._deadline = deadline  # time.monotonic(): no Graph call of the lane waits beyond it
        self._client: GraphClient | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="read-ahead")
        self._ahead: tuple[int, dict[str, Any], Future] | None = None

    def client(self, job: dict[str, Any]) -> GraphClient:
        if self._client is None:
            self._client = self._make_client(job).until(self._deadline).one_request_at_a_time()
        return self._client

    def read_ahead(self, index: int, state: dict[str, Any], fetch: Callable[[], FetchedPage]) -> None:
        self._drop()
        self._ahead = (index, state, self._pool.submit(fetch))

    def take(self, index: int, state: dict[str, Any]) -> FetchedPage | None:
        """The page read ahead for this stream and state (its fetch's error is raised here), or None."""
        if self._ahead is not None and self._ahead[:2] == (index, state):
            ahead, self._ahead = self._ahead, None
            return ahead[2].result()
        self._drop()
        return None

    def _drop(self) -> None:
        """Forget a page read ahead that will not be stored; wait for its request, so that no
        request of the lane outlives it (the next lane of the stream may start at once)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead[2].exception()  # waits; its error does not matter, nothing was stored from it

    def close(self) -> None:
        self._drop()
        self._pool.shutdown(wait=True)
