"""Retries spelled out by the orchestrations (orchestrators/retries.py): a failed step is noted on
the run's row, waits on a durable timer and is called again; a wave with a failed lane is noted,
and the next wave starts after a timer; the attempts are bounded. And no orchestrator of the app
uses a `*_with_retry` API (azure-functions-durable 1.x's retry ids break a fan-out on the real
extension)."""
from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

from devhost.durable import actions as act
from devhost.durable.history import EventType, event
from orchestrators import extraction
from orchestrators.retries import STEP_RETRIES, RetryPolicy
from tests.unit.orchestrators.replaying import Run, scheduled

ORCHESTRATORS = Path(extraction.__file__).parent
RUN = {"connection_id": "c1", "run_id": "r1"}


def _failed(run: Run, task_id: int, message: str):
    return event(EventType.TaskFailed, run.now, TaskScheduledId=task_id, Reason=message, Details="")


def _timers(commands):
    return [c for c in commands if isinstance(c, act.StartTimer)]


def _fire(run: Run, timer: act.StartTimer):
    return run.episode(event(EventType.TimerFired, run.now, TimerId=timer.timer_id, FireAt=timer.fire_at.isoformat()))


def _begun(run: Run):
    run.start()
    return scheduled(run.episode(run.done(0, {"proceed": True, "status": "in_progress", "active": [],
                                             "mailboxes": ["a"], "active_mailboxes": []})))


def test_no_orchestrator_of_the_app_uses_a_with_retry_api():
    offenders = []
    for path in sorted(ORCHESTRATORS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
            if name.endswith("_with_retry") or name == "RetryOptions":
                offenders.append(f"{path.name}:{node.lineno} {name}")
    assert offenders == []


def test_the_policy_waits_5_10_20_seconds_and_caps_the_wait():
    assert [STEP_RETRIES.delay(n).total_seconds() for n in (1, 2, 3)] == [5, 10, 20]
    assert RetryPolicy(first_delay_seconds=30).delay(4) == timedelta(seconds=60)


def _wave_ends(run: Run, wave, ends):
    return run.episode(*[run.done(task_id, end) for (task_id, _, _), end in zip(wave, ends)])


GOING_ON = {"stream_done": False, "status": "in_progress"}


def test_a_wave_with_a_failed_lane_is_noted_then_the_next_wave_starts_after_a_timer():
    run = Run("extract_mailbox", RUN)
    wave = _begun(run)
    ends = [{"error": "GraphUnavailable: 503", "stream": None}, {"stream": 1, **GOING_ON},
            {"stream": 2, **GOING_ON}, {"stream": 3, **GOING_ON}]
    failed_at = run.now + timedelta(seconds=1)
    [(note_id, note_name, note)] = scheduled(_wave_ends(run, wave, ends))
    assert note_name == "note_retry"
    assert note == {**RUN, "retry": {"step": "extract_lane", "attempt": 2, "max_attempts": 4,
                                     "error": "GraphUnavailable: 503",
                                     "retry_at": (failed_at + timedelta(seconds=5)).isoformat()}}
    noted = run.episode(run.done(note_id, True))
    [timer] = _timers(noted)
    assert scheduled(noted) == [] and timer.fire_at == failed_at + timedelta(seconds=5)
    again = scheduled(_fire(run, timer))
    assert [(data["stream"], data["mailbox"]) for _, _, data in again] == [(1, "a"), (2, "a"), (3, "a"), (None, "a")]


def test_four_failing_waves_in_a_row_fail_the_run_and_the_waits_grow():
    run = Run("extract_mailbox", RUN)
    wave, waits = _begun(run), []
    for _ in range(STEP_RETRIES.max_attempts - 1):
        failed_at = run.now + timedelta(seconds=1)
        [(note_id, _, _)] = scheduled(_wave_ends(run, wave, [{"error": "Throttled: busy", "stream": None}] * len(wave)))
        [timer] = _timers(run.episode(run.done(note_id, True)))
        waits.append(timer.fire_at - failed_at)
        wave = scheduled(_fire(run, timer))
    ended = scheduled(_wave_ends(run, wave, [{"error": "Throttled: busy", "stream": None}] * len(wave)))
    assert waits == [timedelta(seconds=5), timedelta(seconds=10), timedelta(seconds=20)]
    assert [(name, data["error"]) for _, name, data in ended] == [
        ("fail_extraction", {"code": "step_failed", "message": "Activity function 'extract_lane' failed: Throttled: busy"})]


def test_a_wave_without_failure_starts_the_count_again():
    run = Run("extract_mailbox", RUN)
    wave = _begun(run)
    for _ in range(2 * STEP_RETRIES.max_attempts):  # failures alternate with good waves: never 4 in a row
        [(note_id, _, _)] = scheduled(_wave_ends(run, wave, [{"error": "Throttled: busy", "stream": None}] * len(wave)))
        wave = scheduled(_fire(run, _timers(run.episode(run.done(note_id, True)))[0]))
        wave = scheduled(_wave_ends(run, wave, [{"stream": 0, **GOING_ON}] * len(wave)))
        if not wave:  # the execution's waves are used up
            break
    assert run.result.actions[-1]["actionType"] == act.CONTINUE_AS_NEW


def test_a_failing_first_step_is_retried_alone_then_the_run_fails():
    run = Run("extract_mailbox", RUN)
    run.start()
    task_id, waits = 0, []
    for _ in range(STEP_RETRIES.max_attempts - 1):
        retry = run.episode(_failed(run, task_id, "Activity function 'begin_extraction' failed: boom"))
        failed_at = run.now
        [(note_id, note_name, note)] = scheduled(retry)
        assert (note_name, note["retry"]["step"]) == ("note_retry", "begin_extraction")
        noted = run.episode(run.done(note_id, True))  # sequential: the timer starts once the note is stored
        assert scheduled(noted) == []
        [timer] = _timers(noted)
        waits.append(timer.fire_at - failed_at)
        [(task_id, name, data)] = scheduled(_fire(run, timer))
        assert (name, data) == ("begin_extraction", RUN)
    [(_, name, data)] = scheduled(run.episode(_failed(run, task_id, "Activity function 'begin_extraction' failed: boom")))
    assert waits == [timedelta(seconds=5), timedelta(seconds=10), timedelta(seconds=20)]
    assert (name, data["error"]) == (
        "fail_extraction", {"code": "step_failed", "message": "Activity function 'begin_extraction' failed: boom"})


def test_a_lane_whose_activity_failed_outright_fails_its_wave_and_the_next_goes_on_with_the_same_streams():
    run = Run("extract_mailbox", RUN)
    wave = _begun(run)
    ends = _wave_ends(run, wave[:3], [{"stream": 1, **GOING_ON}, {"stream": 2, **GOING_ON}, {"stream": 3, **GOING_ON}])
    assert scheduled(ends) == []  # the wave is not over
    lost = "Activity function 'extract_lane' failed: WorkerLost: worker 2 exited with code -9"
    [(note_id, name, note)] = scheduled(run.episode(_failed(run, wave[3][0], lost)))
    assert (name, note["retry"]["step"], note["retry"]["error"]) == ("note_retry", "extract_lane", lost)
    again = scheduled(_fire(run, _timers(run.episode(run.done(note_id, True)))[0]))
    # every lane of the failed wave counts as failed: their claims are claimed again (or resumed)
    assert [(data["stream"], data["mailbox"]) for _, _, data in again] == [(None, "a")] * 4
