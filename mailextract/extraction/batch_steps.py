"""The batch orchestration's own steps: topping up the runs in flight, and the batch's end.
The runs themselves are single-mailbox runs (steps.py), each its own orchestration instance.

Why top-ups rather than sub-orchestrations: an orchestration that waits on its children cannot
continue as new while they run, so its history (and every replay) grows with the batch; at a
thousand mailboxes the batch's own episodes would cost more than the mail. Instead the batch
orchestration polls: each loop, `top_up` reads the runs it started from Table storage, drops the
finished ones and starts the next runs (durable client, instance id = the run's connection id)
until `max_parallel` are in flight again, so a small mailbox frees its slot as soon as it ends.
The orchestration keeps only the ids in flight and the next index, and continues as new every
few dozen loops.

Runs are planned in the top-up: before it starts the next runs, it begins them (steps.py `begin`:
list the mailbox's folders, store the plan) all at once, one thread each. A run's plan costs a
Graph request or two of waiting, and the activities are what a batch is short of: begun inside
their own `begin_extraction` activities, N runs would hold N activities for that wait, where the
top-up holds one. A run's own `begin_extraction` then finds its plan and only reads it; if
planning failed here (Graph throttling, storage), that step plans the run itself, with its
retries. A run that planning ended (unknown mailbox, access denied) is not started.

Exactly once per run: a run is started only when the runtime has no instance of that id, so a
top-up that runs twice (activities are at-least-once) never starts a run twice. A run whose
orchestration ended without recording an outcome (its row still active, checked once the row
has not changed for STALE_AFTER) is marked failed, so the batch always completes.
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Protocol

from mailextract import jobs as J
from mailextract.extraction.service import SINGLE_ORCHESTRATOR, child_connection_id
from mailextract.run_log import log_event
from mailextract.settings import Settings, get_settings
from mailextract.storage.jobs import JobStore
from mailextract.vault import CredentialVault

# A batch's runs run at most this many lanes at once each: Graph's 4 requests per mailbox, as a
# single run does (orchestrators/extraction.py, LANES_PER_MAILBOX).
RUN_STREAMS_IN_FLIGHT = 4
# At most this many runs are planned at once by one top-up (one thread each).
PLANS_AT_ONCE = 32
# A run in progress updates its row at every page; one unchanged this long is asked about.
STALE_AFTER = timedelta(seconds=60)
ALIVE = ("Pending", "Running", "Suspended", "ContinuedAsNew")
log = logging.getLogger("mailextract.batches")


class RunInstances(Protocol):
    """What topping up needs of the Durable runtime (adapted from the durable client)."""

    async def start(self, orchestrator: str, instance_id: str, payload: dict[str, Any]) -> None: ...
    async def runtime_status(self, instance_id: str) -> str | None: ...


def _unchanged_for(row: dict[str, Any]) -> timedelta:
    return datetime.now(timezone.utc) - J.parse_time("updated_at", row["updated_at"])


async def _start(instances: RunInstances, batch_id: str, child: str) -> None:
    await instances.start(SINGLE_ORCHESTRATOR, child,
                          {"connection_id": child, "run_id": batch_id, "streams": RUN_STREAMS_IN_FLIGHT})


class BatchSteps:
    def __init__(self, *, fail_run: Callable[[str, str, dict[str, str]], None],
                 begin_run: Callable[[str, str], dict[str, Any]] | None = None, settings: Settings | None = None,
                 jobs: JobStore | None = None, vault: CredentialVault | None = None):
        self.fail_run = fail_run  # ExtractionSteps.fail: marks a run failed and forgets its secret
        self.begin_run = begin_run  # ExtractionSteps.begin: plans a run (idempotent); None: runs plan themselves
        self.settings = settings or get_settings()
        self.jobs = jobs or JobStore(self.settings)
        self.vault = vault or CredentialVault(self.settings)

    def gate(self, batch_id: str) -> dict[str, Any]:
        """The batch's status and pause cycle; a pending batch becomes in_progress here."""
        def mutate(row: dict[str, Any]):
            if row["status"] != J.PENDING:
                return False
            row.update(status=J.IN_PROGRESS, updated_at=J.utcnow_iso())
            log_event("batch.started", batch_id=batch_id, users=row.get("user_count"))
        row = self.jobs.update_batch(batch_id, mutate)
        if row is None:
            return {"status": J.CANCELLED, "cycle": 0}
        return {"status": row["status"], "cycle": row.get("cycle", 0)}

    async def top_up(self, instances: RunInstances, batch: dict[str, Any]) -> dict[str, Any]:
        """One scheduling loop of a batch. `batch`: {batch_id, count, max_parallel, running, next}.

        Returns the batch's status and cycle, the runs still in flight and the next index to
        start; runs start only while the batch is in progress (not pausing, paused or ended)."""
        batch_id = batch["batch_id"]
        gate = await asyncio.to_thread(self.gate, batch_id)
        running = [child for child in batch["running"] if await self._in_flight(instances, batch_id, child)]
        index, new = batch["next"], []
        while gate["status"] == J.IN_PROGRESS and len(running) + len(new) < batch["max_parallel"] \
                and index < batch["count"]:
            child = child_connection_id(batch_id, index)
            index += 1
            row = await asyncio.to_thread(self.jobs.get, child)
            if row is None or row["status"] in J.FINISHED:  # e.g. cancelled before it started
                continue
            if await instances.runtime_status(child) is None:
                new.append(child)
            else:  # started by an earlier try of this top-up
                running.append(child)
        for child, proceed in zip(new, await self._plan(batch_id, new)):
            if proceed:
                await _start(instances, batch_id, child)
                running.append(child)
        return {**gate, "running": running, "next": index}

    async def _plan(self, batch_id: str, children: list[str]) -> list[bool]:
        """Begin the runs about to start, all at once (the module docstring says why); for each,
        whether to start it: False only for a run that planning ended (failed)."""
        if not children or self.begin_run is None:
            return [True] * len(children)

        def plan(child: str) -> bool:
            try:
                return bool(self.begin_run(child, batch_id)["proceed"])
            except Exception as exc:  # the run's own begin_extraction step plans it, with retries
                log.info("batch %s: run %s left to plan itself (%s)", batch_id, child, type(exc).__name__)
                return True
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(min(len(children), PLANS_AT_ONCE), thread_name_prefix="batch-plan") as pool:
            return list(await asyncio.gather(*(loop.run_in_executor(pool, plan, child) for child in children)))

    async def _in_flight(self, instances: RunInstances, batch_id: str, child: str) -> bool:
        row = await asyncio.to_thread(self.jobs.get, child)
        if row is None or row["status"] in J.FINISHED:
            return False
        if _unchanged_for(row) < STALE_AFTER:
            return True
        status = await instances.runtime_status(child)
        if status in ALIVE:
            return True
        if status is None:  # a start that did not take: start it again
            await _start(instances, batch_id, child)
            return True
        error = {"code": "run_failed", "message": f"the run's orchestration ended ({status}) without an outcome"}
        await asyncio.to_thread(self.fail_run, child, batch_id, error)
        return False

    def fail(self, batch_id: str, error: dict[str, str]) -> None:
        """The batch could not go on (a step failed after its retries). Runs already working
        finish on their own; those not begun are failed too, so the batch's totals add up."""
        def mutate(row: dict[str, Any]):
            if row["status"] not in J.ACTIVE:
                return False
            row.update(status=J.FAILED, error=error, updated_at=J.utcnow_iso())
        row = self.jobs.update_batch(batch_id, mutate)
        if row is None or row["status"] != J.FAILED:
            return
        log_event("batch.failed", batch_id=batch_id, error=error["code"])
        not_begun = {"code": "batch_failed", "message": f"the batch failed before this run began: {error['message']}"}
        for run in self.jobs.children(batch_id):
            if run["status"] in (J.PENDING, J.PAUSED) and run.get("checkpoint") is None:
                self.fail_run(run["connection_id"], batch_id, not_begun)

    def finish(self, batch_id: str) -> dict[str, Any]:
        def mutate(row: dict[str, Any]):
            if row["status"] not in J.ACTIVE:
                return False
            row.update(status=J.COMPLETED, updated_at=J.utcnow_iso())
        row = self.jobs.update_batch(batch_id, mutate) or {}
        self.vault.forget(row.get("credential"))
        runs = self.jobs.children(batch_id)
        outcome = {s: sum(1 for r in runs if r["status"] == s) for s in J.FINISHED}
        log_event("batch.completed", batch_id=batch_id, **outcome)
        return {"status": row.get("status"), **outcome}
