"""Topping up a batch against real Table storage (Azurite): which runs start, when a slot frees,
that a repeated top-up starts nothing twice, and what happens to a run whose orchestration died.
The Durable runtime is a hand-written fake of our own RunInstances port."""
from __future__ import annotations

import asyncio

import pytest

from mailextract import jobs as J
from mailextract.extraction.batch_steps import BatchSteps
from mailextract.extraction.batches import BatchService
from mailextract.extraction.service import SINGLE_ORCHESTRATOR, child_connection_id
from mailextract.extraction.steps import ExtractionSteps
from mailextract.settings import Settings
from mailextract.storage.jobs import JobStore
from tests.integration.sync.test_sync_guarantees import RecordingOrchestrations


@pytest.fixture
def settings(graphsim_env, storage_connection_string, graphsim) -> Settings:
    for i in range(5):  # the batches' mailboxes
        graphsim.add_mailbox(f"user{i}@contoso.com", 3)
    return Settings.from_mapping({**graphsim_env, "AzureWebJobsStorage": storage_connection_string,
                                  "EXTRACTION_BATCH_PARALLELISM": "2"})


class FakeInstances:
    """Instances by id with their runtime status; `start` records and makes one Running."""

    def __init__(self):
        self.status: dict[str, str] = {}
        self.started: list[str] = []

    async def start(self, orchestrator, instance_id, payload):
        assert orchestrator == SINGLE_ORCHESTRATOR and payload["connection_id"] == instance_id
        assert payload["streams"] == 4  # Graph's requests per mailbox: no step of a run waits for one
        self.started.append(instance_id)
        self.status[instance_id] = "Running"

    async def runtime_status(self, instance_id):
        return self.status.get(instance_id)


class Batch:
    def __init__(self, settings: Settings, users: int = 0, upns: list[str] | None = None):
        upns = upns or [f"user{i}@contoso.com" for i in range(users)]
        started = asyncio.run(BatchService(RecordingOrchestrations(), settings=settings).start({"user_upns": upns}, ""))
        self.id, self.jobs, self.instances = started["batch_id"], JobStore(settings), FakeInstances()
        runs = ExtractionSteps(settings=settings)
        self.steps = BatchSteps(settings=settings, fail_run=runs.fail, begin_run=runs.begin)
        self.state = {"batch_id": self.id, "count": len(upns), "max_parallel": 2, "running": [], "next": 0}

    def child(self, index: int) -> str:
        return child_connection_id(self.id, index)

    def top_up(self) -> dict:
        step = asyncio.run(self.steps.top_up(self.instances, self.state))
        self.state.update(running=step["running"], next=step["next"])
        return step

    def set_run(self, index: int, **fields) -> None:
        self.jobs.update(self.child(index), lambda row: row.update(fields))


def test_keeps_max_parallel_runs_in_flight_and_a_run_that_ends_frees_its_slot(settings):
    batch = Batch(settings, users=5)
    step = batch.top_up()
    assert step == {"status": "in_progress", "cycle": 0, "running": [batch.child(0), batch.child(1)], "next": 2}
    assert batch.jobs.get_batch(batch.id)["status"] == J.IN_PROGRESS
    batch.set_run(1, status=J.COMPLETED)
    batch.set_run(2, status=J.CANCELLED)  # cancelled before it began: skipped
    assert batch.top_up()["running"] == [batch.child(0), batch.child(3)]
    assert batch.instances.started == [batch.child(0), batch.child(1), batch.child(3)]
    for index in (0, 3):
        batch.set_run(index, status=J.FAILED)
    assert batch.top_up() == {"status": "in_progress", "cycle": 0, "running": [batch.child(4)], "next": 5}
    batch.set_run(4, status=J.COMPLETED)
    assert batch.top_up()["running"] == []


def test_a_top_up_run_twice_starts_no_run_twice(settings):
    batch = Batch(settings, users=3)
    first = asyncio.run(batch.steps.top_up(batch.instances, batch.state))
    again = asyncio.run(batch.steps.top_up(batch.instances, batch.state))  # the runtime ran it again
    assert again == first
    assert batch.instances.started == [batch.child(0), batch.child(1)]


def test_no_run_starts_while_the_batch_is_paused(settings):
    batch = Batch(settings, users=3)
    batch.jobs.update_batch(batch.id, lambda row: row.update(status=J.PAUSED, cycle=2))
    assert batch.top_up() == {"status": "paused", "cycle": 2, "running": [], "next": 0}
    assert batch.instances.started == []


def test_a_run_whose_orchestration_ended_without_an_outcome_fails_and_one_never_started_starts(settings):
    batch = Batch(settings, users=3)
    batch.top_up()
    long_ago = "2026-01-01T00:00:00.000000Z"
    batch.set_run(0, status=J.IN_PROGRESS, updated_at=long_ago)
    batch.set_run(1, updated_at=long_ago)
    batch.instances.status[batch.child(0)] = "Terminated"
    del batch.instances.status[batch.child(1)]  # its start did not take
    assert batch.top_up()["running"] == [batch.child(1), batch.child(2)]
    failed = batch.jobs.get(batch.child(0))
    assert failed["status"] == J.FAILED
    assert failed["error"] == {"code": "run_failed",
                               "message": "the run's orchestration ended (Terminated) without an outcome"}
    assert batch.instances.started == [batch.child(0), batch.child(1), batch.child(1), batch.child(2)]


def test_a_quiet_run_whose_orchestration_is_alive_is_left_alone(settings):
    batch = Batch(settings, users=2)
    batch.top_up()
    batch.set_run(0, status=J.IN_PROGRESS, updated_at="2026-01-01T00:00:00.000000Z")
    assert batch.top_up()["running"] == [batch.child(0), batch.child(1)]
    assert batch.jobs.get(batch.child(0))["status"] == J.IN_PROGRESS


def test_a_failed_batch_fails_the_runs_not_begun_and_leaves_working_ones(settings):
    batch = Batch(settings, users=4)
    batch.top_up()  # runs 0 and 1 begun (planned) and started
    batch.set_run(1, status=J.PAUSED)
    batch.steps.fail(batch.id, {"code": "step_failed", "message": "storage down"})
    assert batch.jobs.get_batch(batch.id)["status"] == J.FAILED
    statuses = {r["connection_id"]: (r["status"], (r.get("error") or {}).get("code"))
                for r in batch.jobs.children(batch.id)}
    assert statuses == {batch.child(0): (J.IN_PROGRESS, None), batch.child(1): (J.PAUSED, None),
                        batch.child(2): (J.FAILED, "batch_failed"), batch.child(3): (J.FAILED, "batch_failed")}
    assert batch.top_up() == {"status": "failed", "cycle": 0, "running": [batch.child(0), batch.child(1)],
                              "next": 2}


def test_the_runs_a_top_up_starts_are_planned_first_all_at_once(settings, monkeypatch):
    batch = Batch(settings, users=3)
    planned_at_start, start = [], batch.instances.start

    async def start_recording_the_plan(orchestrator, instance_id, payload):
        planned_at_start.append(batch.jobs.get(instance_id)["checkpoint"] is not None)
        await start(orchestrator, instance_id, payload)
    monkeypatch.setattr(batch.instances, "start", start_recording_the_plan)
    batch.top_up()
    assert batch.instances.started == [batch.child(0), batch.child(1)] and planned_at_start == [True, True]
    run = batch.jobs.get(batch.child(0))
    assert run["status"] == J.IN_PROGRESS and run["folders_total"] == 11  # its begin_extraction only reads it
    assert batch.jobs.get(batch.child(2))["checkpoint"] is None  # not started, not planned


def test_a_run_that_planning_ended_is_not_started(settings, graphsim):
    graphsim.add_user_without_mailbox("nobody@contoso.com")
    batch = Batch(settings, upns=["user0@contoso.com", "nobody@contoso.com", "user2@contoso.com"])
    assert batch.top_up()["running"] == [batch.child(0)]  # the other slot is filled at the next loop
    failed = batch.jobs.get(batch.child(1))
    assert failed["status"] == J.FAILED and failed["error"]["code"] == "mailbox_not_found"
    assert batch.top_up()["running"] == [batch.child(0), batch.child(2)]
    assert batch.instances.started == [batch.child(0), batch.child(2)]


def test_a_run_whose_planning_met_a_transient_error_starts_and_plans_itself(settings, monkeypatch):
    batch = Batch(settings, users=2)
    begin = batch.steps.begin_run

    def begin_failing_for_the_first_run(child, run_id):
        if child == batch.child(0):
            raise ConnectionResetError("storage dropped the connection")
        return begin(child, run_id)
    monkeypatch.setattr(batch.steps, "begin_run", begin_failing_for_the_first_run)
    assert batch.top_up()["running"] == [batch.child(0), batch.child(1)]
    assert batch.instances.started == [batch.child(0), batch.child(1)]
    assert batch.jobs.get(batch.child(0))["checkpoint"] is None  # its begin_extraction step plans it
    assert batch.jobs.get(batch.child(1))["checkpoint"] is not None
