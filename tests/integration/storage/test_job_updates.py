"""JobStore.update against Azurite when the caller hands it the row it has just read: a current
row is written without reading it again; a row changed meanwhile is read again and the change
applied to what is stored now, so no write is lost."""
from __future__ import annotations

import uuid

import pytest

from mailextract.settings import Settings
from mailextract.storage.jobs import JobStore


@pytest.fixture
def jobs(storage_connection_string):
    return JobStore(Settings.from_mapping({"AzureWebJobsStorage": storage_connection_string}))


def _run(jobs: JobStore) -> str:
    connection_id = f"upd-{uuid.uuid4().hex[:10]}"
    jobs.create_run(connection_id, {"run_id": "r1", "status": "in_progress", "pages_done": 0, "notes": ""})
    return connection_id


def _add_note(note: str):
    def mutate(row):
        row["notes"] += f"{note};"
        row["pages_done"] += 1
    return mutate


def test_a_current_read_is_written_as_is_and_left_untouched_for_the_caller(jobs):
    connection_id = _run(jobs)
    read = jobs.get(connection_id)
    stored = jobs.update(connection_id, _add_note("a"), read=read)
    assert stored["notes"] == "a;" and jobs.get(connection_id)["notes"] == "a;"
    assert read["notes"] == "" and read["pages_done"] == 0  # the caller's copy is not mutated


def test_a_stale_read_loses_nothing_written_meanwhile(jobs):
    connection_id = _run(jobs)
    stale = jobs.get(connection_id)
    jobs.update(connection_id, _add_note("meanwhile"))
    stored = jobs.update(connection_id, _add_note("mine"), read=stale)
    assert stored["notes"] == "meanwhile;mine;" and stored["pages_done"] == 2
    assert jobs.get(connection_id)["notes"] == "meanwhile;mine;"


def test_the_row_returned_carries_its_new_etag_so_it_can_be_handed_back(jobs):
    connection_id = _run(jobs)
    stored = jobs.update(connection_id, _add_note("a"))
    assert stored["etag"] == jobs.get(connection_id)["etag"]
    assert jobs.update(connection_id, _add_note("b"), read=stored)["notes"] == "a;b;"
