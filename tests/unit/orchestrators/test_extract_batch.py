"""The batch orchestration's decisions, replayed through the real SDK with hand-fed top-up
results: it polls its runs on a durable timer, waits for `continue-{cycle}` while paused, finishes
once every run ended, stops when the batch was cancelled, and keeps its history bounded."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from devhost.durable import actions as act
from devhost.durable.history import EventType, event
from orchestrators import extraction
from tests.unit.orchestrators.replaying import Run, scheduled

BATCH = {"batch_id": "batch_1", "count": 5, "max_parallel": 2}


def _fire(run: Run, commands):
    timer = next(c for c in commands if isinstance(c, act.StartTimer))
    assert timer.fire_at == run.now + timedelta(seconds=extraction.BATCH_POLL_SECONDS)
    return run.episode(event(EventType.TimerFired, run.now, TimerId=timer.timer_id, FireAt=timer.fire_at.isoformat()))


def _top_up(run: Run, commands, *, status="in_progress", running=(), next_index=0, cycle=0):
    [(task_id, name, data)] = scheduled(commands)
    assert name == "batch_top_up"
    return data, run.episode(run.done(task_id, {"status": status, "cycle": cycle, "running": list(running),
                                                 "next": next_index}))


def test_each_loop_tops_up_with_what_the_last_one_left_then_waits_a_poll():
    run = Run("extract_batch", BATCH)
    sent, after = _top_up(run, run.start(), running=["batch_1-0000", "batch_1-0001"], next_index=2)
    assert sent == {**BATCH, "running": [], "next": 0}
    sent, _ = _top_up(run, _fire(run, after), running=["batch_1-0001", "batch_1-0002"], next_index=3)
    assert sent == {**BATCH, "running": ["batch_1-0000", "batch_1-0001"], "next": 2}


def test_finishes_once_every_run_was_started_and_ended():
    run = Run("extract_batch", BATCH)
    _, after = _top_up(run, run.start(), running=[], next_index=5)
    [(task_id, name, data)] = scheduled(after)
    assert (name, data) == ("finish_batch", "batch_1")
    run.episode(run.done(task_id, {"status": "completed", "completed": 5, "cancelled": 0, "failed": 0}))
    assert run.result.is_done and run.result.output == {"status": "completed", "completed": 5, "cancelled": 0,
                                                        "failed": 0}


@pytest.mark.filterwarnings("ignore:Potential duplicate Task completion")  # the SDK on the stale cycle's event
def test_paused_it_waits_for_the_cycles_continue_then_tops_up_again():
    run = Run("extract_batch", BATCH)
    _, after = _top_up(run, run.start(), status="paused", running=["batch_1-0000"], next_index=1, cycle=3)
    assert after == [] and not run.result.is_done
    assert run.episode(event(EventType.EventRaised, run.now, Name="continue-2", Input=None)) == []
    sent, _ = _top_up(run, run.episode(event(EventType.EventRaised, run.now, Name="continue-3", Input=None)))
    assert sent["running"] == ["batch_1-0000"] and sent["next"] == 1


def test_a_cancelled_batch_ends_without_finishing():
    run = Run("extract_batch", BATCH)
    _, after = _top_up(run, run.start(), status="cancelled", running=["batch_1-0000"], next_index=1)
    assert after == [] and run.result.is_done and run.result.output == {"status": "cancelled"}


def test_after_its_loops_it_continues_as_new_with_the_runs_in_flight():
    run = Run("extract_batch", BATCH)
    commands = run.start()
    for _ in range(extraction.BATCH_LOOPS_PER_EXECUTION - 1):
        _, after = _top_up(run, commands, running=["batch_1-0003"], next_index=4)
        commands = _fire(run, after)
    _, after = _top_up(run, commands, running=["batch_1-0003"], next_index=4)
    _fire(run, after)
    assert run.result.is_done and run.result.actions[-1]["actionType"] == act.CONTINUE_AS_NEW
    assert json.loads(run.result.actions[-1]["input"]) == {**BATCH, "running": ["batch_1-0003"], "next": 4}


def test_a_top_up_failing_after_its_retries_fails_the_batch():
    run = Run("extract_batch", BATCH)
    [(task_id, _, _)] = scheduled(run.start())
    commands = run.episode(event(EventType.TaskFailed, run.now, TaskScheduledId=task_id, Reason="storage down",
                                 Details=""))
    while not scheduled(commands) or scheduled(commands)[0][1] != "fail_batch":
        commands = _retry(run, commands)
    [(task_id, name, data)] = scheduled(commands)
    assert data["batch_id"] == "batch_1" and data["error"]["code"] == "step_failed"
    run.episode(run.done(task_id, None))
    assert run.result.is_done and run.result.output == {"status": "failed"}


def _retry(run: Run, commands):
    """Fail a retried attempt, or fire the retry timer between attempts."""
    timers = [c for c in commands if isinstance(c, act.StartTimer)]
    if timers:
        return run.episode(event(EventType.TimerFired, run.now, TimerId=timers[0].timer_id,
                                 FireAt=timers[0].fire_at.isoformat()))
    [(task_id, _, _)] = scheduled(commands)
    return run.episode(event(EventType.TaskFailed, run.now, TaskScheduledId=task_id, Reason="storage down", Details=""))
