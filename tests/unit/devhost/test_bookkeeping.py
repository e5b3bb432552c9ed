"""History/action bookkeeping: ids, retries, timers, sub-orchestrations, non-determinism.

The driver below runs orchestrators through the real SDK replay with devhost's Book and no
storage, so these tests prove the ids devhost assigns are the ones the SDK expects.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import azure.durable_functions as df
import pytest

from devhost.durable import actions as act
from devhost.durable.history import EventType, event
from devhost.durable.replay import replay

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def retry_beside_plain(context):
    a = context.call_activity_with_retry("A", df.RetryOptions(1000, 3), None)
    b = context.call_activity("B")
    yield context.task_any([a, b])
    d = yield context.call_activity("D")
    return [d, (yield a)]


@app.orchestration_trigger(context_name="context")
def retry_exhausted(context):
    try:
        yield context.call_activity_with_retry("A", df.RetryOptions(500, 2), None)
    except Exception as exc:
        return str(exc).split(" \n")[0]


@app.orchestration_trigger(context_name="context")
def mixed(context):
    yield context.call_sub_orchestrator("child", 1)
    event_task = context.wait_for_external_event("go")
    timer = context.create_timer(context.current_utc_datetime + timedelta(seconds=60))
    winner = yield context.task_any([event_task, timer])
    if winner == event_task:
        timer.cancel()
    return (yield context.call_activity("after"))


HANDLES = {f.get_function_name(): f.get_user_function() for f in app.get_functions()}


class Driver:
    """Plays episodes like the engine: append events, replay, plan the new actions."""

    def __init__(self, name: str):
        self.handle = HANDLES[name]
        self.history: list[dict] = []
        self.book = act.Book()
        self.now = T0

    def episode(self, *events: dict):
        self.now += timedelta(seconds=1)
        new = [event(EventType.OrchestratorStarted, self.now), *events]
        result = replay(self.handle, instance_id="i", input_text=None,
                        history=[dict(e, IsPlayed=True) for e in self.history] + new,
                        parent_instance_id=None)
        self.history += new
        commands = [] if result.error else self.book.plan(result.actions)
        for ev in events:
            commands += self.book.on_delivered(ev, self.now)
        return result, commands

    def start(self):
        return self.episode(event(EventType.ExecutionStarted, self.now, Name="x", Version=None, Input=None))

    def done(self, task_id: int, value: str = '"ok"'):
        return event(EventType.TaskCompleted, self.now, TaskScheduledId=task_id, Result=value)

    def failed(self, task_id: int):
        return event(EventType.TaskFailed, self.now, TaskScheduledId=task_id, Reason="boom", Details="")

    def fired(self, timer_id: int):
        return event(EventType.TimerFired, self.now, TimerId=timer_id)


def test_retry_ids_interleave_with_new_actions_as_the_sdk_assigns_them():
    d = Driver("retry_beside_plain")
    _, commands = d.start()
    assert commands == [act.ScheduleActivity(0, "A", "null"), act.ScheduleActivity(1, "B", "null")]
    # B completes and A fails in one episode, the retry event last: D takes id 2, the timer 3.
    _, commands = d.episode(d.done(1, '"b"'), d.failed(0))
    assert commands[0] == act.ScheduleActivity(2, "D", "null")
    assert isinstance(commands[1], act.StartTimer) and commands[1].timer_id == 3
    assert commands[1].fire_at == d.now + timedelta(seconds=1)
    _, commands = d.episode(d.done(2, '"d"'))
    assert commands == []
    _, commands = d.episode(d.fired(3))
    assert commands == [act.ScheduleActivity(4, "A", "null")]
    result, _ = d.episode(d.done(4, '"a2"'))
    assert result.is_done and result.output == ["d", "a2"]


def test_exhausted_retry_needs_one_more_timer_before_the_error_reaches_user_code():
    d = Driver("retry_exhausted")
    d.start()
    _, commands = d.episode(d.failed(0))
    assert [type(c) for c in commands] == [act.StartTimer] and commands[0].timer_id == 1
    _, commands = d.episode(d.fired(1))
    assert commands == [act.ScheduleActivity(2, "A", "null")]
    result, commands = d.episode(d.failed(2))
    assert not result.is_done  # the SDK waits for the extra timer
    assert commands[0].timer_id == 3 and commands[0].fire_at == d.now  # fires at once
    result, _ = d.episode(d.fired(3))
    assert result.is_done and result.output == "boom"


def test_sub_orchestration_wait_event_timer_and_cancellation():
    d = Driver("mixed")
    _, commands = d.start()
    assert commands == [act.StartSubOrchestration(0, "child", "1", None)]
    _, commands = d.episode(event(EventType.SubOrchestrationInstanceCompleted, d.now,
                                  TaskScheduledId=0, Result="2"))
    # wait_for_external_event takes no id; the timer takes 1.
    assert len(commands) == 1 and isinstance(commands[0], act.StartTimer) and commands[0].timer_id == 1
    assert [r[0] for r in d.book.recorded] == [act.CALL_SUB, act.WAIT_EVENT, act.CREATE_TIMER]
    _, commands = d.episode(event(EventType.EventRaised, d.now, Name="go", Input='"yes"'))
    # The lost timer comes back cancelled: cancel it, and the next activity takes id 2.
    assert commands == [act.CancelTimer(1), act.ScheduleActivity(2, "after", "null")]


def test_changed_action_is_non_determinism():
    book = act.Book()
    book.plan([{"actionType": 0, "functionName": "A", "input": None}])
    with pytest.raises(act.NonDeterminismError, match="action #0 was 0:'A' when first run and is now 0:'B'"):
        book.plan([{"actionType": 0, "functionName": "B", "input": None}])
    with pytest.raises(act.NonDeterminismError, match="yields 0 actions where 1"):
        book.plan([])


def test_flatten_unrolls_compound_actions_in_order():
    payload = [[{"actionType": 12, "compoundActions": [
        {"actionType": 0, "functionName": "a"},
        {"actionType": 11, "compoundActions": [{"actionType": 6, "externalEventName": "e"},
                                               {"actionType": 5, "fireAt": "2026-01-01T00:00:00.000000Z"}]},
    ]}, {"actionType": 0, "functionName": "b"}]]
    assert [a.get("functionName") or a.get("externalEventName") or a["actionType"]
            for a in act.flatten(payload)] == ["a", "e", 5, "b"]


def test_entities_and_durable_http_are_refused():
    with pytest.raises(act.UnsupportedActionError, match="call_http"):
        act.Book().plan([{"actionType": 8}])


def test_book_survives_a_json_round_trip():
    book = act.Book()
    book.plan([{"actionType": 1, "functionName": "A", "input": "1",
                "retryOptions": {"firstRetryIntervalInMilliseconds": 10, "maxNumberOfAttempts": 2}}])
    copy = act.Book.from_json(book.to_json())
    assert copy.is_retry_event({"EventType": int(EventType.TaskFailed), "TaskScheduledId": 0})
    assert copy.next_id == 1 and copy.recorded == book.recorded
