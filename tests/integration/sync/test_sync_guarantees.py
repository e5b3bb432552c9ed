"""Sync guarantees that a timing-based end-to-end test could only hit by luck, tested exactly:
the core runs in-process against real Azurite and graphsim over HTTPS."""
from __future__ import annotations

import asyncio
import uuid

import pytest
from azure.data.tables import TableServiceClient

from mailextract import jobs as J
from mailextract.connections.store import ConnectionStore
from mailextract.extraction import planning
from mailextract.extraction.mail_writer import MailWriter
from mailextract.extraction.service import START_FAILED
from mailextract.extraction.steps import ExtractionSteps
from mailextract.graph import GraphClient
from mailextract.settings import Settings
from mailextract.storage.jobs import JobStore
from mailextract.storage.mail_index import MailIndex
from mailextract.storage.run_plans import RunPlans
from mailextract.storage.sync_state import SyncStateStore
from mailextract.sync.service import SyncService
from tests.support.devhost_fixtures import wait_for

UPN = "alice@contoso.com"


@pytest.fixture
def settings(graphsim_env, storage_connection_string) -> Settings:
    return Settings.from_mapping({**graphsim_env, "AzureWebJobsStorage": storage_connection_string})


class RecordingOrchestrations:
    """Our own port, recording what would be started instead of starting it."""

    def __init__(self):
        self.started: list[tuple[str, str, dict]] = []
        self.purged: list[str] = []

    async def start(self, orchestrator, instance_id, payload):
        self.started.append((orchestrator, instance_id, payload))

    async def raise_event(self, instance_id, name, payload=None):
        raise AssertionError("not expected")

    async def terminate(self, instance_id, reason):
        raise AssertionError("not expected")

    async def runtime_status(self, instance_id):  # the runs started here ended long ago
        return "Completed" if instance_id in {started[1] for started in self.started} else None

    async def purge(self, instance_id):
        self.purged.append(instance_id)
        return 1


class RefusingOrchestrations(RecordingOrchestrations):
    """The runtime refusing every start, as the durable client does when the host is down."""

    async def start(self, orchestrator, instance_id, payload):
        raise Exception("Cannot connect to host 127.0.0.1:7071")


class StillEndingOrchestrations(RecordingOrchestrations):
    """The runtime as it is just after a run's row reads `completed`: every instance it started is
    still Running, and starting an instance id that is running is refused, as the extension does."""

    async def start(self, orchestrator, instance_id, payload):
        if instance_id in {started[1] for started in self.started}:
            raise Exception(f"An orchestration with instance ID '{instance_id}' already exists with status Running.")
        await super().start(orchestrator, instance_id, payload)

    async def runtime_status(self, instance_id):
        return "Running" if instance_id in {started[1] for started in self.started} else None


class CrashOnceBeforeSavingDeltaLink(SyncStateStore):
    """The process dies after a round's last page is stored and before its deltaLink is saved."""

    def __init__(self, settings):
        super().__init__(settings)
        self.crashed = False

    def save_delta_link(self, *args, **kwargs):
        if not self.crashed:
            self.crashed = True
            raise ConnectionResetError("host killed")
        super().save_delta_link(*args, **kwargs)


def _connection(settings: Settings) -> str:
    connection_id = f"int-{uuid.uuid4().hex[:10]}"
    now = J.utcnow_iso()
    ConnectionStore(settings).create(connection_id, {
        "name": None, "mailboxes": [UPN], "folders": ["Inbox"], "schedule": "every 1 hour", "interval_seconds": 3600,
        "options": {"body_format": "html", "include_attachments": False, "purge_deleted": False}, "enabled": True,
        "credential": {"kind": "settings", "tenant_id": settings.tenant_id, "client_id": settings.outlook_client_id},
        "created_at": now, "updated_at": now, "last_sync_at": None, "last_sync_status": None, "next_sync_at": now})
    return connection_id


def _run_to_end(steps: ExtractionSteps, connection_id: str, run_id: str) -> None:
    """What the orchestration does, one page at a time: begin, page each stream (claiming the next
    when one ends), retry a failed call with the same arguments as the runtime retries an activity,
    and when all are claimed, finish, or resume the streams still active if finish asks to."""
    begun = steps.begin(connection_id, run_id)
    assert begun["proceed"]
    queue = list(begun["active"])
    stream = queue.pop(0) if queue else None
    for _ in range(500):
        try:
            page = steps.extract_page(connection_id, run_id, stream)
        except ConnectionResetError:
            continue  # the same call again
        assert not page.get("wait"), "one stream at a time: a mark is always read to its end first"
        if not page.get("exhausted"):
            stream = None if page["stream_done"] else page["stream"]
            continue
        if queue:
            stream = queue.pop(0)
            continue
        if not steps.finish(connection_id, run_id).get("resume"):
            return
        queue = list(steps.begin(connection_id, run_id)["active"])
        stream = queue.pop(0)
    raise AssertionError("the run did not end")


def _live(settings: Settings, connection_id: str) -> dict:
    table = TableServiceClient.from_connection_string(settings.azure_web_jobs_storage).get_table_client("MailMessages")
    return {r["id"]: (r["folder_id"], r["is_read"]) for r in table.query_entities(f"PartitionKey eq '{connection_id}'")
            if not r.get("deleted_at")}


def _inbox_truth(graphsim) -> dict:
    """Messages of Inbox and every folder below it (the connection's `folders: ["Inbox"]`)."""
    mailbox = graphsim.mailbox(UPN)
    folders = mailbox.folders()
    inbox = {mailbox.folder_id("inbox")}
    while grown := {f["id"] for f in folders if f["parentFolderId"] in inbox} - inbox:
        inbox |= grown
    return {m["id"]: (m["parentFolderId"], m["isRead"]) for m in mailbox.messages(fields=["id", "parentFolderId", "isRead"])
            if m["parentFolderId"] in inbox}


async def _start_sync(settings: Settings, connection_id: str) -> str:
    await SyncService(RecordingOrchestrations(), settings=settings).start(connection_id, "")
    return JobStore(settings).get(connection_id)["run_id"]


def test_crash_between_storing_a_page_and_saving_its_delta_link_loses_nothing(settings, graphsim):
    connection_id = _connection(settings)
    crashing = CrashOnceBeforeSavingDeltaLink(settings)
    steps = ExtractionSteps(settings=settings, sync_state=crashing)
    _run_to_end(steps, connection_id, asyncio.run(_start_sync(settings, connection_id)))
    assert crashing.crashed
    truth = _inbox_truth(graphsim)
    assert _live(settings, connection_id) == truth and truth

    added = graphsim.mailbox(UPN).add_message("inbox", subject="after the crash")
    _run_to_end(ExtractionSteps(settings=settings), connection_id, asyncio.run(_start_sync(settings, connection_id)))
    job = JobStore(settings).get(connection_id)
    assert job["status"] == J.COMPLETED
    assert job["messages_extracted"] == 1  # the saved deltaLinks made it incremental
    assert added in _live(settings, connection_id) and _live(settings, connection_id) == _inbox_truth(graphsim)


def test_a_sync_started_as_the_last_one_shows_completed_is_accepted_while_its_orchestration_ends(settings):
    connection_id = _connection(settings)
    orchestrations = StillEndingOrchestrations()
    service = SyncService(orchestrations, settings=settings)
    for _ in range(3):
        assert asyncio.run(service.start(connection_id, ""))["status"] == J.PENDING
        _run_to_end(ExtractionSteps(settings=settings), connection_id, JobStore(settings).get(connection_id)["run_id"])
        assert JobStore(settings).get(connection_id)["status"] == J.COMPLETED
    assert len({instance_id for _, instance_id, _ in orchestrations.started}) == 3
    assert orchestrations.purged == []  # an instance still ending is never purged


def test_two_timer_ticks_at_once_start_one_sync(settings):
    connection_id = _connection(settings)
    orchestrations = RecordingOrchestrations()

    async def two_ticks():
        service = SyncService(orchestrations, settings=settings)
        return await asyncio.gather(service.start_due(), service.start_due())
    results = asyncio.run(two_ticks())
    started = [r for r in results if connection_id in r["started"]]
    assert len(started) == 1
    run = JobStore(settings).get(connection_id)
    assert [s[1] for s in orchestrations.started if s[2]["connection_id"] == connection_id] == [
        f"sync-{run['run_id']}"]
    assert run["status"] == J.PENDING
    next_due = ConnectionStore(settings).get(connection_id)["next_sync_at"]
    assert next_due > J.utcnow_iso()  # not due again before its interval


def test_a_sync_the_runtime_refuses_is_failed_and_the_tick_goes_on(settings):
    connection_id = _connection(settings)
    ticked = asyncio.run(SyncService(RefusingOrchestrations(), settings=settings).start_due())
    assert connection_id in ticked["refused"] and connection_id not in ticked["started"]
    row = JobStore(settings).get(connection_id)
    assert (row["kind"], row["status"], row["error"]) == ("sync", J.FAILED, START_FAILED)
    assert ConnectionStore(settings).get(connection_id)["last_sync_status"] == J.FAILED


# --- big folders read as date windows --------------------------------------------------------
@pytest.fixture
def split_small_folders(monkeypatch):
    """Split folders of 20 messages and more into windows of about 10, so alice's Inbox splits."""
    monkeypatch.setattr(planning, "SPLIT_MIN_MESSAGES", 20)
    monkeypatch.setattr(planning, "MESSAGES_PER_WINDOW", 10)


def _page_stream_to_end(steps: ExtractionSteps, connection_id: str, run_id: str) -> dict:
    """Claim the next stream and page it to its end; the last page's result."""
    page = steps.extract_page(connection_id, run_id, None)
    while not page.get("stream_done") and not page.get("wait") and not page.get("exhausted"):
        page = steps.extract_page(connection_id, run_id, page["stream"])
    return page


def test_a_big_folder_is_read_as_windows_after_its_mark_and_later_changes_reach_the_next_sync(
        graphsim_env, storage_connection_string, graphsim, split_small_folders):
    settings = Settings.from_mapping({**graphsim_env, "AzureWebJobsStorage": storage_connection_string,
                                      "GRAPH_PAGE_SIZE": "4"})  # windows of several pages
    connection_id = _connection(settings)
    mailbox = graphsim.mailbox(UPN)
    stale = "AAMkAGI2-gone-before-this-run"  # a row whose message no longer exists
    MailIndex(settings).upsert(connection_id, [{"id": stale, "user_upn": UPN, "folder_id": mailbox.folder_id("inbox"),
                                                "subject": "old", "is_read": False}])
    run_id = asyncio.run(_start_sync(settings, connection_id))
    steps = ExtractionSteps(settings=settings)
    assert steps.begin(connection_id, run_id)["proceed"]
    plan = RunPlans(settings).get(JobStore(settings).get(connection_id)["checkpoint"]["plan"])
    modes = [s["mode"] for s in plan]
    windows = [s for s in plan if s["mode"] == "window"]
    assert modes[0] == "mark" and len(windows) >= 2 and all(w["after"] == 0 for w in windows)
    assert windows[0]["received_after"] is None and windows[-1]["received_before"] is None
    assert [w["received_before"] for w in windows[:-1]] == [w["received_after"] for w in windows[1:]]
    assert JobStore(settings).get(connection_id)["folders_total"] == len({s["id"] for s in plan})

    assert _page_stream_to_end(steps, connection_id, run_id)["stream"] == 0  # the mark, ids only
    while plan[JobStore(settings).get(connection_id)["checkpoint"]["next"]]["mode"] != "window":
        _page_stream_to_end(steps, connection_id, run_id)  # the folders that were not split
    first_window = _page_stream_to_end(steps, connection_id, run_id)["stream"]
    stored = [m for m in _live(settings, connection_id) if m != stale]
    # changes to messages a window has already stored, and a new one, while the run goes on
    changed = {"read": stored[0], "deleted": stored[1], "moved": stored[2]}
    mailbox.update_message(changed["read"], isRead=not mailbox.message(changed["read"])["isRead"])
    mailbox.delete_message(changed["deleted"])
    mailbox.move_message(changed["moved"], "archive")
    arrived = mailbox.add_message("inbox", subject="arrived while the windows read")
    _run_to_end(steps, connection_id, run_id)

    job = JobStore(settings).get(connection_id)
    assert job["status"] == J.COMPLETED and first_window == plan.index(windows[0])
    assert job["folders_done"] == job["folders_total"]
    assert MailIndex(settings).get(connection_id, stale)["deleted_at"]  # swept: its folder was read in full
    assert JobStore(settings).get(connection_id)["messages_deleted"] >= 1

    next_run = asyncio.run(_start_sync(settings, connection_id))
    _run_to_end(ExtractionSteps(settings=settings), connection_id, next_run)
    job = JobStore(settings).get(connection_id)
    assert job["status"] == J.COMPLETED
    assert job["messages_extracted"] <= 10  # incremental: from the deltaLink the mark took
    truth = _inbox_truth(graphsim)
    assert _live(settings, connection_id) == truth and arrived in truth and changed["deleted"] not in truth
    # the mark's deltaLink returns ids only: the changed messages were fetched with their content
    assert MailIndex(settings).get(connection_id, arrived)["subject"] == "arrived while the windows read"
    assert MailIndex(settings).get(connection_id, changed["read"])["subject"] == mailbox.message(changed["read"])["subject"]


def test_the_first_run_of_a_connection_reads_no_folder_back_to_sweep_it(
        graphsim_env, storage_connection_string, graphsim, split_small_folders, monkeypatch):
    settings = Settings.from_mapping({**graphsim_env, "AzureWebJobsStorage": storage_connection_string})
    connection_id = _connection(settings)
    swept, sweep = [], MailWriter.sweep

    def recording_sweep(self, connection_id, stream, *rest):
        swept.append(stream["path"])
        return sweep(self, connection_id, stream, *rest)
    monkeypatch.setattr(MailWriter, "sweep", recording_sweep)
    run_id = asyncio.run(_start_sync(settings, connection_id))
    _run_to_end(ExtractionSteps(settings=settings), connection_id, run_id)

    job = JobStore(settings).get(connection_id)
    plan = RunPlans(settings).get(job["checkpoint"]["plan"])
    assert job["status"] == J.COMPLETED and sum(s["mode"] == "window" for s in plan) >= 2
    assert swept == []  # an empty index has no row this run's rounds and windows did not store
    assert _live(settings, connection_id) == _inbox_truth(graphsim)

    mailbox = graphsim.mailbox(UPN)
    mailbox.delete_message(next(iter(_live(settings, connection_id))))
    mailbox.add_message("inbox", subject="after the first run")
    next_run = asyncio.run(_start_sync(settings, connection_id))
    _run_to_end(ExtractionSteps(settings=settings), connection_id, next_run)
    assert JobStore(settings).get(connection_id)["messages_extracted"] <= 10  # from the mark's deltaLink
    assert _live(settings, connection_id) == _inbox_truth(graphsim)


@pytest.fixture
def delta_pages(monkeypatch) -> list[tuple[str, bool]]:
    """(folder id, from a saved deltaLink?) of every delta page the run's steps ask Graph for."""
    read, delta_page = [], GraphClient.delta_page

    def recording_delta_page(self, upn, folder_id, cursor):
        read.append((folder_id, bool(cursor.get("delta_link"))))
        return delta_page(self, upn, folder_id, cursor)
    monkeypatch.setattr(GraphClient, "delta_page", recording_delta_page)
    return read


def test_a_first_run_sends_no_request_for_a_folder_listed_empty_and_the_next_sync_reads_it_in_full(
        settings, graphsim, delta_pages):
    mailbox = graphsim.mailbox(UPN)
    empty = mailbox.add_folder("Empty", "inbox")
    connection_id = _connection(settings)
    run_id = asyncio.run(_start_sync(settings, connection_id))  # the connection's first run
    _run_to_end(ExtractionSteps(settings=settings), connection_id, run_id)
    job = JobStore(settings).get(connection_id)
    assert job["status"] == J.COMPLETED and job["folders_done"] == job["folders_total"] == 5
    planned = {stream["id"] for stream in RunPlans(settings).get(job["checkpoint"]["plan"])}
    assert {folder for folder, _ in delta_pages} == planned - {empty}  # every other folder had its round
    assert _live(settings, connection_id) == _inbox_truth(graphsim)

    arrived = mailbox.add_message(empty, subject="arrived in the empty folder")
    delta_pages.clear()
    _run_to_end(ExtractionSteps(settings=settings), connection_id, asyncio.run(_start_sync(settings, connection_id)))
    assert (empty, False) in delta_pages  # no deltaLink saved for it: a full round
    assert all(with_link for folder, with_link in delta_pages if folder != empty)  # the others: incremental
    assert arrived in _live(settings, connection_id)
    assert _live(settings, connection_id) == _inbox_truth(graphsim)


def test_a_folder_listed_empty_is_still_read_once_the_connection_has_rows(settings, graphsim, delta_pages):
    """Its rows could have to be swept: only a round over the whole folder can tell."""
    empty = graphsim.mailbox(UPN).add_folder("Empty", "inbox")
    connection_id = _connection(settings)
    _run_to_end(ExtractionSteps(settings=settings), connection_id, asyncio.run(_start_sync(settings, connection_id)))
    delta_pages.clear()
    _run_to_end(ExtractionSteps(settings=settings), connection_id, asyncio.run(_start_sync(settings, connection_id)))
    assert (empty, False) in delta_pages
    assert _live(settings, connection_id) == _inbox_truth(graphsim)


# --- steps of several pages ------------------------------------------------------------------
@pytest.fixture
def pages_of_4(graphsim_env, storage_connection_string) -> Settings:
    return Settings.from_mapping({**graphsim_env, "AzureWebJobsStorage": storage_connection_string,
                                  "GRAPH_PAGE_SIZE": "4"})


def _begun_run(settings: Settings) -> tuple[ExtractionSteps, str, str]:
    connection_id = _connection(settings)
    run_id = asyncio.run(_start_sync(settings, connection_id))
    steps = ExtractionSteps(settings=settings)
    assert steps.begin(connection_id, run_id)["proceed"]
    return steps, connection_id, run_id


def _progress(settings: Settings, connection_id: str) -> tuple[int, int, int]:
    """(pages stored, messages the run counted, distinct messages in the index)."""
    job = JobStore(settings).get(connection_id)
    return job["pages_done"], job["messages_extracted"], len(_live(settings, connection_id))


def test_a_step_reads_its_pages_one_after_the_other_and_the_next_goes_on_from_its_checkpoint(pages_of_4):
    steps, connection_id, run_id = _begun_run(pages_of_4)
    step = steps.extract_pages(connection_id, run_id, None, pages=3)
    assert (step["pages"], step["stream_done"], step["status"]) == (3, False, J.IN_PROGRESS)
    assert _progress(pages_of_4, connection_id) == (3, 12, 12)
    following = steps.extract_pages(connection_id, run_id, step["stream"], pages=3)
    assert (following["stream"], following["pages"]) == (step["stream"], 3)
    assert _progress(pages_of_4, connection_id) == (6, 24, 24)


def test_a_step_fetches_the_next_page_while_it_stores_one_and_sends_one_request_at_a_time(pages_of_4, graphsim,
                                                                                          monkeypatch):
    steps, connection_id, run_id = _begun_run(pages_of_4)
    graphsim.reset_stats()  # the step's requests only

    def asked() -> int:
        return graphsim.stats()["requests_by_mailbox"].get(UPN, 0)
    store, stored = steps.writer.store, []

    def store_once_the_next_page_is_asked_for(*args):
        if len(stored) < 2:  # while page k is stored, page k + 1 is requested (not after the last page)
            wait_for(lambda: asked() >= len(stored) + 2, timeout=10, message=f"page {len(stored) + 2} requested")
        stored.append(asked())
        return store(*args)
    monkeypatch.setattr(steps.writer, "store", store_once_the_next_page_is_asked_for)
    step = steps.extract_pages(connection_id, run_id, None, pages=3)
    assert (step["pages"], stored) == (3, [2, 3, 3])
    assert _progress(pages_of_4, connection_id) == (3, 12, 12)
    stats = graphsim.stats()
    assert stats["requests_by_mailbox"][UPN] == 3 and stats["max_in_flight_by_mailbox"][UPN] == 1


def test_a_lane_claims_its_next_stream_and_fetches_its_first_page_while_it_stores_the_last_of_one(pages_of_4,
                                                                                                 graphsim, monkeypatch):
    steps, connection_id, run_id = _begun_run(pages_of_4)
    graphsim.reset_stats()

    def asked() -> int:
        return graphsim.stats()["requests_by_mailbox"].get(UPN, 0)
    store, stored = steps.writer.store, []

    def store_once_the_next_page_is_asked_for(*args):
        stored.append(None)
        wait_for(lambda: asked() > len(stored), timeout=10, message=f"a page after page {len(stored)} requested")
        return store(*args)
    monkeypatch.setattr(steps.writer, "store", store_once_the_next_page_is_asked_for)
    with pytest.raises(AssertionError, match="a page after page"):  # the last page of the run has none after it
        steps.extract_pages(connection_id, run_id, None, pages=1000, seconds=3600)
    checkpoint = JobStore(pages_of_4).get(connection_id)["checkpoint"]
    plan = RunPlans(pages_of_4).get(checkpoint["plan"])
    assert len([s for s in plan if s["total"]]) > 1  # the lane went through several streams...
    assert checkpoint["next"] == len(plan) and len(checkpoint["active"]) == 1  # ... to the run's last page
    assert len(stored) == asked()  # and every page it asked for was one it stored: nothing fetched in vain


def test_a_step_claims_the_next_stream_when_one_ends_and_a_retried_step_resumes_after_its_last_stored_page(
        pages_of_4, graphsim, monkeypatch):
    steps, connection_id, run_id = _begun_run(pages_of_4)
    store, calls = steps.writer.store, []

    def store_failing_the_second_page_once(*args):
        calls.append(1)
        if len(calls) == 2:
            raise ConnectionResetError("storage dropped the connection")
        return store(*args)
    monkeypatch.setattr(steps.writer, "store", store_failing_the_second_page_once)
    with pytest.raises(ConnectionResetError):
        steps.extract_pages(connection_id, run_id, None, pages=1000)
    assert _progress(pages_of_4, connection_id) == (1, 4, 4)

    job = JobStore(pages_of_4).get(connection_id)
    stream = int(next(iter(job["checkpoint"]["active"])))
    plan = RunPlans(pages_of_4).get(job["checkpoint"]["plan"])
    step = steps.extract_pages(connection_id, run_id, stream, pages=1000, seconds=3600)  # tried again
    assert step["exhausted"] and step["streams_ended"] == len(plan) > 1  # the rest of the run, in one step
    truth = _inbox_truth(graphsim)
    pages, counted, stored = _progress(pages_of_4, connection_id)
    assert pages == 1 + step["pages"] and counted == stored == len(truth)
    assert _live(pages_of_4, connection_id) == truth


def test_a_step_stops_after_the_page_during_which_the_run_began_pausing(pages_of_4):
    steps, connection_id, run_id = _begun_run(pages_of_4)

    def pausing(row):
        row["status"] = J.PAUSING
    JobStore(pages_of_4).update(connection_id, pausing)
    step = steps.extract_pages(connection_id, run_id, None, pages=3)
    assert (step["pages"], step["status"]) == (1, J.PAUSING)
    assert _progress(pages_of_4, connection_id) == (1, 4, 4)


def test_a_step_starts_no_further_page_once_its_time_is_up(pages_of_4):
    steps, connection_id, run_id = _begun_run(pages_of_4)
    assert steps.extract_pages(connection_id, run_id, None, pages=3, seconds=0)["pages"] == 1
    assert _progress(pages_of_4, connection_id) == (1, 4, 4)
