"""Deleting a run right after its row says completed: its orchestration may need a moment more."""
from __future__ import annotations

import asyncio

import pytest

from mailextract.errors import JobConflict
from mailextract.operations import jobs as OJ


class StillStopping:
    """Our purge port: refuses while the orchestration is still completing, `times` times."""

    def __init__(self, times: int):
        self.times, self.calls = times, 0

    async def __call__(self, instance_id: str) -> int:
        self.calls += 1
        if self.calls <= self.times:
            raise JobConflict("the run's orchestration is still stopping; try again in a few seconds")
        return 1


def _operations(purge) -> OJ.JobOperations:
    return OJ.JobOperations(purge, settings=object(), jobs=object(), index=object(), blobs=object(), vault=object())


def test_purge_waits_for_an_orchestration_that_is_completing():
    purge = StillStopping(times=2)
    assert asyncio.run(_operations(purge)._purge_finished("extract-1")) == 1
    assert purge.calls == 3


def test_purge_gives_up_with_the_conflict_after_the_settle_time(monkeypatch):
    monkeypatch.setattr(OJ, "ORCHESTRATION_SETTLE_SECONDS", 0.3)
    purge = StillStopping(times=1000)
    with pytest.raises(JobConflict, match="still stopping"):
        asyncio.run(_operations(purge)._purge_finished("extract-1"))
    assert 2 <= purge.calls < 1000
