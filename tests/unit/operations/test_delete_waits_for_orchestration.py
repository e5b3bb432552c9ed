"""Removing a finished run waits for its orchestration to settle and never purges one still going.

The row says finished before the orchestration does (a completing run's last step, a cancel's
terminate not processed yet). The Durable extension refuses to purge a non-terminal orchestration
with 412 since 3.9.1 and purged it before, so the removal reads the status first and takes the
412 (JobConflict from the port) like a status that has not settled (docs/durable-host.md).
"""
from __future__ import annotations

import asyncio

import pytest

from http_triggers.orchestrations import DurableOrchestrations
from mailextract import jobs as J
from mailextract.errors import JobConflict
from mailextract.operations import jobs as OJ


class Runtime:
    """The two ports over one orchestration: statuses it goes through, and the purges asked."""

    def __init__(self, statuses: list[str | None], refusals: int = 0):
        self.statuses, self.refusals = list(statuses), refusals
        self.reads: list[str | None] = []
        self.purged_while: list[str | None] = []

    async def status(self, instance_id: str) -> str | None:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        self.reads.append(status)
        return status

    async def purge(self, instance_id: str) -> int:
        self.purged_while.append(self.reads[-1] if self.reads else None)
        if self.refusals:
            self.refusals -= 1
            raise JobConflict("the run's orchestration is still stopping; try again in a few seconds")
        return 1


class Recorder:
    """Stores that record what was deleted, in order."""

    def __init__(self, run: dict, log: list):
        self.run, self.log = run, log

    def get(self, connection_id):
        return self.run

    def delete(self, connection_id):
        self.log.append(("row", connection_id))

    def forget_for_run(self, run):
        self.log.append(("credential", run["connection_id"]))

    def delete_partition(self, connection_id):
        self.log.append(("messages", connection_id))
        return 3

    def delete_prefix(self, prefix):
        self.log.append(("blobs", prefix))
        return 2


def _operations(runtime: Runtime, run: dict | None = None, log: list | None = None) -> OJ.JobOperations:
    store = Recorder(run or {}, log if log is not None else [])
    return OJ.JobOperations(runtime.purge, instance_status=runtime.status, settings=object(), jobs=store,
                            index=store, blobs=store, vault=store)


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(OJ, "ORCHESTRATION_SETTLE_SECONDS", 0.8)


def test_a_terminate_not_processed_yet_is_waited_for_then_purged():
    runtime = Runtime(["Running", "Running", "Terminated"])
    assert asyncio.run(_operations(runtime)._purge_finished("extract-1")) == 1
    assert runtime.purged_while == ["Terminated"]  # never asked while Running


@pytest.mark.parametrize("status", ["Completed", "Failed", "Terminated", "Canceled"])
def test_a_settled_orchestration_is_purged_at_once(status):
    runtime = Runtime([status])
    assert asyncio.run(_operations(runtime)._purge_finished("extract-1")) == 1
    assert runtime.reads == [status]


def test_no_orchestration_is_nothing_to_purge():
    runtime = Runtime([None])
    assert asyncio.run(_operations(runtime)._purge_finished("extract-1")) == 0
    assert runtime.purged_while == []


def test_the_runtimes_412_is_waited_out_like_a_running_status():
    runtime = Runtime(["Completed"], refusals=2)
    assert asyncio.run(_operations(runtime)._purge_finished("extract-1")) == 1
    assert len(runtime.purged_while) == 3


@pytest.mark.parametrize("status", ["Running", "Pending", "Suspended", "ContinuedAsNew"])
def test_one_that_does_not_settle_is_a_conflict_and_never_purged(status):
    runtime = Runtime([status])
    with pytest.raises(JobConflict, match="^the run's orchestration is still stopping; try again in a few seconds$"):
        asyncio.run(_operations(runtime)._purge_finished("extract-1"))
    assert runtime.purged_while == [] and len(runtime.reads) >= 3


def test_a_delete_that_gives_up_has_deleted_nothing():
    run = {"connection_id": "c-1", "status": J.CANCELLED, "instance_id": "extract-1"}
    log: list = []
    with pytest.raises(JobConflict, match="still stopping"):
        asyncio.run(_operations(Runtime(["Running"]), run, log).delete_run("c-1", "true"))
    assert log == []  # the credential, data and row are all still there for the retry


def test_a_delete_after_the_orchestration_settled_purges_it_before_anything_else():
    run = {"connection_id": "c-1", "status": J.CANCELLED, "instance_id": "extract-1"}
    log: list = []
    answer = asyncio.run(_operations(Runtime(["Running", "Terminated"]), run, log).delete_run("c-1", "true"))
    assert answer == {"connection_id": "c-1", "deleted": {"job": True, "orchestrations": 1, "messages": 3,
                                                           "blobs": 2}}
    assert log == [("credential", "c-1"), ("messages", "c-1"), ("blobs", "c-1/"), ("row", "c-1")]


class RaisingClient:
    def __init__(self, message: str):
        self.message = message

    async def purge_instance_history(self, instance_id: str):
        raise Exception(self.message)


def test_the_port_turns_the_extensions_412_into_a_conflict_and_lets_other_failures_through():
    refused = DurableOrchestrations(RaisingClient("The operation failed with an unexpected status code 412"))
    with pytest.raises(JobConflict, match="still stopping"):
        asyncio.run(refused.purge("extract-1"))
    broken = DurableOrchestrations(RaisingClient("The operation failed with an unexpected status code 400"))
    with pytest.raises(Exception, match="status code 400") as caught:
        asyncio.run(broken.purge("extract-1"))
    assert not isinstance(caught.value, JobConflict)
