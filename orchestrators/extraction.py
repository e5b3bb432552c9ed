"""Orchestrations of extraction runs: one mailbox, and a batch of mailboxes.

Orchestrators decide, activities do: these generators only pass ids and small summaries and
never touch Graph or storage. A single run pages through its mailbox folders (big ones as date
windows, planning.py) in waves: each wave is one `task_all` of up to LANES_PER_MAILBOX lanes per
mailbox, a lane being one activity that reads pages of a stream, and of the next streams of its
mailbox it claims, for about LANE_SECONDS (steps.py; checkpoints live in Table storage, page by
page, so pause takes effect at the next page boundary). History stays bounded: after
WAVES_PER_EXECUTION waves, and after each continue, the run goes on as a new execution
(continue_as_new). Continue is an external event; pause is the run's row (the lanes stop at their
next page boundary when they read `pausing`); cancel is terminate (done by the service). Status
changes are logged by the activities; orchestrator logs are guarded by is_replaying.

Why waves, and not a sliding window of steps in `task_any`: the Durable extension replays an
out-of-process orchestrator's actions one after the other and awaits each, and the Python SDK 1.x
sends a later `task_any` with only the tasks it has not sent before; so a step added to a
window is only scheduled on Azure once the previously added one has completed, and the window
shrinks to one step (docs/durable-retries.md, "Fan-out: a sliding window does not slide"). One `task_all` of
new tasks is awaited whole, and its lanes run side by side.
"""
from __future__ import annotations

import logging
from datetime import timedelta

import azure.durable_functions as df

from mailextract import jobs as J
from mailextract.extraction.service import BATCH_ORCHESTRATOR, SINGLE_ORCHESTRATOR
from orchestrators import history_timestamps
from orchestrators.retries import NOTE_ACTIVITY, STEP_RETRIES, call_with_retries, error_message, retry_note

history_timestamps.install()  # replays parse each history timestamp once, not once per episode
bp = df.Blueprint()
log = logging.getLogger("mailextract.orchestrators")

LANE_ACTIVITY = "extract_lane"
# About 2 x LANES_PER_RUN + 4 history events a wave: an execution keeps about 350 at most.
WAVES_PER_EXECUTION = 10
# Outlook allows 4 concurrent requests per app and mailbox (docs/graph-limits.md). The Graph client's
# limiter counts within one process only, and on Azure a run's lanes run on several instances: the
# orchestration itself runs at most LANES_PER_MAILBOX lanes of a mailbox at once, and a lane makes
# one Graph request at a time (steps.py), so Graph sees at most 4 for the mailbox.
LANES_PER_MAILBOX = 4
# A sync of many mailboxes runs at most this many lanes at once in all.
LANES_PER_RUN = 16
# A batch looks at its runs once a second (a slot stays free at most that long) and keeps at most
# about 5 x 60 events of history per execution.
BATCH_POLL_SECONDS = 1
BATCH_LOOPS_PER_EXECUTION = 60


def _error_of(exc: Exception) -> dict:
    return {"code": "step_failed", "message": error_message(exc)}


def plan_wave(going_on: list[dict], mailboxes: list, exhausted: set, per_mailbox: int) -> list[dict]:
    """The lanes of the next wave: the streams that have more pages first, then, for each mailbox
    that may have streams left to claim, lanes that claim one (stream None), up to `per_mailbox`
    lanes a mailbox and LANES_PER_RUN in all. A stream left out stays active in the checkpoint: a
    later wave or execution goes on with it."""
    wave: list[dict] = []
    for lane in going_on:
        if len(wave) < LANES_PER_RUN and sum(1 for w in wave if w["mailbox"] == lane["mailbox"]) < per_mailbox:
            wave.append(lane)
    for mailbox in mailboxes:
        lanes = sum(1 for lane in wave if lane["mailbox"] == mailbox)
        while mailbox not in exhausted and lanes < per_mailbox and len(wave) < LANES_PER_RUN:
            wave.append({"stream": None, "mailbox": mailbox})
            lanes += 1
    return wave


@bp.orchestration_trigger(context_name="context", orchestration=SINGLE_ORCHESTRATOR)
def extract_mailbox(context: df.DurableOrchestrationContext):
    """One run (an extraction, or a sync of the connection's mailboxes), in waves of lanes.

    A lane that ends its time with its stream unfinished goes on with it in the next wave; a lane
    that found nothing left to claim in its mailbox (`exhausted`) ends that mailbox's claiming. A
    lane that failed transiently returns the failure (activities/extraction.py), and one whose
    activity failed outright (its worker process lost) fails the whole wave: the next wave starts
    after a durable timer (retries.py), and a fourth failing wave in a row fails the run. (The
    extension awaits every lane of a wave before it goes on, so lanes of two waves never overlap.)
    A stream a failed lane had just claimed stays active in the checkpoint: the run's finish asks
    for it to be resumed (a new execution resumes the active streams first).
    """
    run = context.get_input()  # {"connection_id", "run_id"[, "streams"]}
    per_mailbox = min(run.get("streams") or LANES_PER_MAILBOX, LANES_PER_MAILBOX)
    owner = {"connection_id": run["connection_id"], "run_id": run["run_id"]}
    try:
        begun = yield from call_with_retries(context, "begin_extraction", run, owner=owner)
        if not begun["proceed"]:
            return {"status": begun.get("status")}
        status = begun["status"]
        # None: one group for every mailbox (an execution begun before claims were per mailbox)
        mailboxes = begun.get("mailboxes") or [None]
        going_on = [{"stream": stream, "mailbox": mailbox} for stream, mailbox in zip(
            begun["active"], begun.get("active_mailboxes") or [None] * len(begun["active"]))]
        exhausted: set = set()
        failed_waves, stopped, waves = 0, False, 0
        while status not in J.PAUSE_STATUSES and waves < WAVES_PER_EXECUTION:
            wave = plan_wave(going_on, mailboxes, exhausted, per_mailbox)
            if not wave:
                break
            waves += 1
            try:
                ends = yield context.task_all([context.call_activity(LANE_ACTIVITY, {**run, **lane}) for lane in wave])
            except Exception as exc:  # a lane's activity itself failed (its worker was lost): a failed wave
                ends = [{"error": error_message(exc), "stream": lane["stream"]} for lane in wave]
            going_on, failure = [], None
            for lane, end in zip(wave, ends):
                if end.get("error"):
                    failure = end["error"]
                    if lane["stream"] is not None:
                        going_on.append(lane)
                    continue
                stopped = stopped or bool(end.get("failed") or end.get("stopped"))
                if end.get("exhausted"):
                    exhausted.add(lane["mailbox"])
                if end.get("status") in J.PAUSE_STATUSES:
                    status = end["status"]
                if end.get("stream") is not None and not end.get("stream_done"):
                    going_on.append({"stream": end["stream"], "mailbox": lane["mailbox"]})
            if stopped:
                return {"status": "stopped"}
            if failure is None:
                failed_waves = 0
                continue
            failed_waves += 1
            if failed_waves >= STEP_RETRIES.max_attempts:
                raise RuntimeError(f"Activity function '{LANE_ACTIVITY}' failed: {failure}")
            retry_at = context.current_utc_datetime + STEP_RETRIES.delay(failed_waves)
            try:
                yield context.call_activity(NOTE_ACTIVITY, retry_note(
                    owner, LANE_ACTIVITY, failed_waves + 1, STEP_RETRIES, RuntimeError(failure), retry_at))
            except Exception:  # a note that could not be stored does not stop the retry
                pass
            yield context.create_timer(retry_at)
        if status in J.PAUSE_STATUSES:
            yield context.call_activity("pause_extraction", run)
            yield context.wait_for_external_event("continue")
            context.continue_as_new(run)
            return None
        if going_on or not exhausted.issuperset(mailboxes):  # the execution's waves are used up
            context.continue_as_new(run)
            return None
        finished = yield from call_with_retries(context, "finish_extraction", run, owner=owner)
        if finished.get("resume"):
            context.continue_as_new(run)
            return None
        return finished
    except Exception as exc:  # a step failed after its retries: the run ends failed, visibly
        if not context.is_replaying:
            log.warning("run %s of connection %s failed in a step", run["run_id"], run["connection_id"])
        yield context.call_activity("fail_extraction", {**run, "error": _error_of(exc)})
        return {"status": J.FAILED}


@bp.orchestration_trigger(context_name="context", orchestration=BATCH_ORCHESTRATOR)
def extract_batch(context: df.DurableOrchestrationContext):
    """A batch: keeps up to `max_parallel` mailbox runs in flight until every one has ended.

    Each loop one `batch_top_up` drops the runs that ended and starts the next ones (batch_steps.py),
    then a durable timer waits BATCH_POLL_SECONDS. The runs are not sub-orchestrations, so after
    BATCH_LOOPS_PER_EXECUTION loops the batch continues as new with just the ids in flight.
    Paused: it waits for `continue-{cycle}`, one name per pause cycle (batches.py says why).
    """
    batch = context.get_input()  # {"batch_id", "count", "max_parallel"[, "running", "next"]}
    state = {"running": batch.get("running", []), "next": batch.get("next", 0)}
    owner = {"batch_id": batch["batch_id"]}
    try:
        for _ in range(BATCH_LOOPS_PER_EXECUTION):
            step = yield from call_with_retries(context, "batch_top_up", {**batch, **state}, owner=owner)
            if step["status"] in J.FINISHED:  # cancelled (or deleted) meanwhile
                return {"status": step["status"]}
            state = {"running": step["running"], "next": step["next"]}
            if state["next"] >= batch["count"] and not state["running"]:  # every run ended (even if paused)
                return (yield from call_with_retries(context, "finish_batch", batch["batch_id"], owner=owner))
            if step["status"] in J.PAUSE_STATUSES:
                yield context.wait_for_external_event(f"continue-{step['cycle']}")
                continue
            yield context.create_timer(context.current_utc_datetime + timedelta(seconds=BATCH_POLL_SECONDS))
    except Exception as exc:  # a step failed after its retries: the batch ends failed, visibly
        yield context.call_activity("fail_batch", {"batch_id": batch["batch_id"], "error": _error_of(exc)})
        return {"status": J.FAILED}
    context.continue_as_new({**batch, **state})
    return None
