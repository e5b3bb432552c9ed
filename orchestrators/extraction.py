"""Orchestrations of extraction runs: one mailbox, and a batch of mailboxes.

Orchestrators decide, activities do: these generators only pass ids and small summaries and
never touch Graph or storage. A single run pages through its mailbox folders (big ones as date
windows, planning.py), up to STREAMS_IN_FLIGHT streams at once, each step (activity) reading up to
PAGES_PER_STEP pages of a stream and the streams it claims next (checkpoints live in Table storage,
page by page), so pause takes effect at the next page boundary, within one page's time. History
stays bounded: after STEPS_PER_EXECUTION steps, and after each continue, the run goes on as a new
execution (continue_as_new). Pause and continue are external events; cancel is terminate (done by
the service). Status changes are logged by the activities; orchestrator logs are guarded by
is_replaying.
"""
from __future__ import annotations

import logging
from datetime import timedelta

import azure.durable_functions as df

from mailextract import jobs as J
from mailextract.extraction.service import BATCH_ORCHESTRATOR, SINGLE_ORCHESTRATOR
from orchestrators import history_timestamps

history_timestamps.install()  # replays parse each history timestamp once, not once per episode
bp = df.Blueprint()
log = logging.getLogger("mailextract.orchestrators")

STEPS_PER_EXECUTION = 100
# Steps of several pages mean fewer episodes and fewer drains before continue_as_new; the steps
# that will be in flight when an execution stops read one page each, so its drain is one page long
# (bench/README.md measured the drains).
PAGES_PER_STEP = 3
# Outlook allows 4 concurrent requests per app and mailbox (graph-mail.md "Limits"), which the Graph
# client's per-mailbox limiter enforces; twice as many streams in flight keep 4 requests at Graph
# while the other pages are being stored (bench/README.md measured 6 and 8).
STREAMS_IN_FLIGHT = 8
# Transient failures (Graph still throttling after the client's own bounded wait, storage
# hiccups) get a few more tries, spaced out; permanent ones end the run in the activity itself.
STEP_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=4)
# A batch looks at its runs once a second (a slot stays free at most that long) and keeps at most
# about 5 x 60 events of history per execution.
BATCH_POLL_SECONDS = 1
BATCH_LOOPS_PER_EXECUTION = 60


def _error_of(exc: Exception) -> dict:
    message = str(exc).split("\n")[0].strip() or type(exc).__name__
    return {"code": "step_failed", "message": message[:500]}


@bp.orchestration_trigger(context_name="context", orchestration=SINGLE_ORCHESTRATOR)
def extract_mailbox(context: df.DurableOrchestrationContext):
    """One mailbox run (extraction or sync): up to STREAMS_IN_FLIGHT streams page at once (a
    batch's runs: the input's `streams`, see batch_steps.py).

    Each step is one activity reading up to PAGES_PER_STEP pages of a stream, then of the next
    stream it claims when that one ends (steps.py); a step that ended its last stream makes room
    for a claim. To pause, or after STEPS_PER_EXECUTION steps, no new step starts and the
    steps in flight finish (their checkpoints are stored); the next execution resumes the streams
    still active. The last 2 x (streams in flight) steps an execution schedules read one page each.
    """
    run = context.get_input()  # {"connection_id", "run_id"[, "streams"]}
    streams_in_flight = run.get("streams") or STREAMS_IN_FLIGHT
    try:
        begun = yield context.call_activity_with_retry("begin_extraction", STEP_RETRY, run)
        if not begun["proceed"]:
            return {"status": begun.get("status")}
        status = begun["status"]
        pause = context.wait_for_external_event("pause")  # one waiter per execution
        waiting_for_pause = True
        scheduled = 0

        def start_step(stream: int | None):  # the next step of a stream (None: claim the next stream)
            nonlocal scheduled
            scheduled += 1
            winding_down = scheduled > STEPS_PER_EXECUTION - 2 * streams_in_flight
            return context.call_activity_with_retry("extract_page", STEP_RETRY, {
                **run, "stream": stream, "pages": 1 if winding_down else PAGES_PER_STEP})
        in_flight = [] if status in J.PAUSE_STATUSES else [start_step(stream) for stream in begun["active"]]
        exhausted, steps_done, stopped = False, 0, False
        unfinished = False  # a stream with more pages was left for the next execution
        waiting = False  # the next stream waits for its folder's mark: claim again once a stream ends

        def stopping() -> bool:  # no new step starts; the steps in flight finish
            return status in J.PAUSE_STATUSES or steps_done >= STEPS_PER_EXECUTION or stopped
        while True:
            while not stopping() and not exhausted and not waiting and len(in_flight) < streams_in_flight:
                in_flight.append(start_step(None))  # claims the next stream
            if not in_flight:  # (a mark in the way is always in flight: waiting never ends here)
                break
            winner = yield context.task_any(in_flight + ([pause] if waiting_for_pause else []))
            if winner == pause:
                waiting_for_pause, status = False, "pausing"
                continue
            in_flight.remove(winner)
            page = yield winner  # raises when the step failed after its retries
            steps_done += 1
            if page.get("wait"):
                waiting = True
                continue
            if page.get("stream_done") or page.get("streams_ended"):
                waiting = False
            stopped = stopped or bool(page.get("failed") or page.get("stopped"))
            exhausted = exhausted or bool(page.get("exhausted"))
            if status not in J.PAUSE_STATUSES:
                status = page.get("status", status)
            if page.get("stream") is not None and not page.get("stream_done"):
                if stopping():
                    unfinished = True
                else:
                    in_flight.append(start_step(page["stream"]))  # the stream's next pages
        if stopped:
            return {"status": "stopped"}
        if status in J.PAUSE_STATUSES:
            yield context.call_activity("pause_extraction", run)
            yield context.wait_for_external_event("continue")
            context.continue_as_new(run)
            return None
        if not exhausted or unfinished:
            context.continue_as_new(run)
            return None
        finished = yield context.call_activity_with_retry("finish_extraction", STEP_RETRY, run)
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
    try:
        for _ in range(BATCH_LOOPS_PER_EXECUTION):
            step = yield context.call_activity_with_retry("batch_top_up", STEP_RETRY, {**batch, **state})
            if step["status"] in J.FINISHED:  # cancelled (or deleted) meanwhile
                return {"status": step["status"]}
            state = {"running": step["running"], "next": step["next"]}
            if state["next"] >= batch["count"] and not state["running"]:  # every run ended (even if paused)
                return (yield context.call_activity_with_retry("finish_batch", STEP_RETRY, batch["batch_id"]))
            if step["status"] in J.PAUSE_STATUSES:
                yield context.wait_for_external_event(f"continue-{step['cycle']}")
                continue
            yield context.create_timer(context.current_utc_datetime + timedelta(seconds=BATCH_POLL_SECONDS))
    except Exception as exc:  # a step failed after its retries: the batch ends failed, visibly
        yield context.call_activity("fail_batch", {"batch_id": batch["batch_id"], "error": _error_of(exc)})
        return {"status": J.FAILED}
    context.continue_as_new({**batch, **state})
    return None
