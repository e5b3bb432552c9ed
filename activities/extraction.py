"""Activities of mailbox runs (extractions and syncs) and batches: thin adapters to mailextract.

Each builds (once per process) the core objects from settings and calls one step. Inputs and
outputs are ids and small summaries, never message bodies or secrets. `batch_top_up` starts runs
itself, through a durable client binding (batch_steps.py says why).
"""
from __future__ import annotations

import functools

import azure.durable_functions as df

from http_triggers.orchestrations import DurableOrchestrations
from mailextract.extraction.batch_steps import BatchSteps
from mailextract.extraction.steps import ExtractionSteps
from mailextract.sync.service import record_outcome

bp = df.Blueprint()


@functools.cache
def steps() -> ExtractionSteps:
    return ExtractionSteps(on_finished=record_outcome)


@functools.cache
def batch_steps() -> BatchSteps:
    return BatchSteps(fail_run=steps().fail, begin_run=steps().begin)


@bp.activity_trigger(input_name="run")
def begin_extraction(run: dict) -> dict:
    return steps().begin(run["connection_id"], run["run_id"])


@bp.activity_trigger(input_name="run")
def extract_page(run: dict) -> dict:
    """Up to `pages` pages of one stream (the name is kept: orchestrations in flight call it)."""
    return steps().extract_pages(run["connection_id"], run["run_id"], run.get("stream"), pages=run.get("pages", 1))


@bp.activity_trigger(input_name="run")
def pause_extraction(run: dict) -> bool:
    return steps().mark_paused(run["connection_id"], run["run_id"])


@bp.activity_trigger(input_name="run")
def finish_extraction(run: dict) -> dict:
    return steps().finish(run["connection_id"], run["run_id"])


@bp.activity_trigger(input_name="run")
def fail_extraction(run: dict) -> None:
    steps().fail(run["connection_id"], run["run_id"], run["error"])


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
