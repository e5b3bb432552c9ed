"""Activities of mailbox runs (extractions and syncs) and batches: thin adapters to mailextract.

Each builds (once per process) the core objects from settings and calls one step. Inputs and
outputs are ids and small summaries, never message bodies or secrets. `batch_top_up` starts runs
itself, through a durable client binding (batch_steps.py says why).
"""
from __future__ import annotations

import functools
import logging

import azure.durable_functions as df

from http_triggers.orchestrations import DurableOrchestrations
from mailextract.extraction.batch_steps import BatchSteps
from mailextract.extraction.steps import ExtractionSteps
from mailextract.storage.jobs import note_retry as note_retry_on_row
from mailextract.sync.service import record_outcome

bp = df.Blueprint()
log = logging.getLogger("mailextract.activities")
LANE_PAGES = 10_000  # a lane is bounded by its time (steps.LANE_SECONDS), not by a page count


@functools.cache
def steps() -> ExtractionSteps:
    return ExtractionSteps(on_finished=record_outcome)


@functools.cache
def batch_steps() -> BatchSteps:
    return BatchSteps(fail_run=steps().fail, begin_run=steps().begin)


@bp.activity_trigger(input_name="run")
def begin_extraction(run: dict) -> dict:
    return steps().begin(run["connection_id"], run["run_id"])


@bp.activity_trigger(input_name="lane")
def extract_lane(lane: dict) -> dict:
    """Pages of one lane of a run for about LANE_SECONDS (steps.py). A failure a later try may
    not meet (Graph throttling or unavailable past the client's bounded wait, storage unreachable)
    is returned as `{"error"}`, not raised: the lane is one of a wave the orchestration awaits
    whole, and it decides when to try again (orchestrators/extraction.py). Failures a retry cannot
    fix end the run inside the step itself."""
    try:
        return steps().extract_pages(lane["connection_id"], lane["run_id"], lane.get("stream"), pages=LANE_PAGES,
                                     mailbox=lane.get("mailbox"))
    except Exception as exc:
        log.warning("lane of run %s (stream %s) failed: %s: %s", lane["run_id"], lane.get("stream"),
                    type(exc).__name__, exc, exc_info=exc)
        return {"error": f"{type(exc).__name__}: {exc}".split("\n")[0][:500], "stream": lane.get("stream")}


@bp.activity_trigger(input_name="run")
def pause_extraction(run: dict) -> bool:
    return steps().mark_paused(run["connection_id"], run["run_id"])


@bp.activity_trigger(input_name="run")
def finish_extraction(run: dict) -> dict:
    return steps().finish(run["connection_id"], run["run_id"])


@bp.activity_trigger(input_name="run")
def fail_extraction(run: dict) -> None:
    steps().fail(run["connection_id"], run["run_id"], run["error"])


@bp.activity_trigger(input_name="note")
def note_retry(note: dict) -> bool:
    """A step failed and is called again after a durable timer (orchestrators/retries.py): say so
    on the run's or the batch's row."""
    if note.get("batch_id"):
        return note_retry_on_row(steps().jobs, note["retry"], batch_id=note["batch_id"])
    return note_retry_on_row(steps().jobs, note["retry"], connection_id=note["connection_id"], run_id=note["run_id"])


@bp.activity_trigger(input_name="batch")
@bp.durable_client_input(client_name="client")
async def batch_top_up(batch: dict, client: df.DurableOrchestrationClient) -> dict:
    return await batch_steps().top_up(DurableOrchestrations(client), batch)


@bp.activity_trigger(input_name="batch")
def fail_batch(batch: dict) -> None:
    batch_steps().fail(batch["batch_id"], batch["error"])


@bp.activity_trigger(input_name="batch_id")
def finish_batch(batch_id: str) -> dict:
    return batch_steps().finish(batch_id)
