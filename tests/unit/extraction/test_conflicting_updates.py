"""Job-row updates are re-applied after an ETag conflict: a step must act on the attempt that
stuck, not on an earlier one that lost (a fake store plays the conflict)."""
from __future__ import annotations

import copy

from mailextract import jobs as J
from mailextract.extraction.steps import ExtractionSteps
from mailextract.settings import Settings
from mailextract.storage.jobs import move_status


class ConflictOnceJobs:
    """Like JobStore.update: the first attempt loses to a concurrent write (`meanwhile`)."""

    def __init__(self, row, meanwhile):
        self.row, self.meanwhile = row, meanwhile

    def get(self, connection_id):
        return copy.deepcopy(self.row)

    def update(self, connection_id, mutate, read=None):
        mutate(copy.deepcopy(self.row))  # this attempt conflicts: its result is not stored
        self.meanwhile(self.row)
        current = copy.deepcopy(self.row)
        if mutate(current) is False:
            return self.get(connection_id)
        self.row = current
        return copy.deepcopy(current)


def _steps(jobs) -> ExtractionSteps:
    return ExtractionSteps(settings=Settings.from_mapping({}), jobs=jobs)


def test_a_status_change_lost_to_a_cancel_is_not_reported_as_made():
    jobs = ConflictOnceJobs({"connection_id": "c1", "run_id": "r1", "status": J.IN_PROGRESS},
                            meanwhile=lambda row: row.update(status=J.CANCELLED))
    assert move_status(jobs, "c1", "r1", J.COMPLETED, only_from=J.ACTIVE) is None
    assert jobs.row["status"] == J.CANCELLED


def test_a_claim_reports_the_folder_it_got_after_a_conflict():
    def another_claim(row):
        row["checkpoint"]["next"] = 1
        row["checkpoint"]["active"]["0"] = {"cursor": None, "round": None, "restarts": 0}
    jobs = ConflictOnceJobs({"connection_id": "c1", "run_id": "r1", "status": J.IN_PROGRESS,
                             "checkpoint": {"plan": "p", "next": 0, "active": {}}}, meanwhile=another_claim)
    stream, row = _steps(jobs)._claim("c1", "r1", [{"mode": "delta"}] * 5)
    assert stream == 1 and row["checkpoint"] == jobs.row["checkpoint"]  # the row as the claim stored it
    assert set(jobs.row["checkpoint"]["active"]) == {"0", "1"} and jobs.row["checkpoint"]["next"] == 2
