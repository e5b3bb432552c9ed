"""Task ids as the extension allocates them (actions.py), driven like the engine drives them:
the real SDK replays the history, Book.episode replays it as the extension does, and the events
recording the new work are appended after the episode's events, as the engine records them.

What is pinned here: ids follow the order in which events are replayed, not the SDK's counter;
the extension invokes an action only once the one before it has completed; and SDK 1.x issue
#603 (retries in a fan-out) ends the way the extension makes it end.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import azure.durable_functions as df
import pytest

from devhost.durable import actions as act
from devhost.durable.history import EventType, event, iso
from devhost.durable.replay import replay
from tests.unit.devhost import test_bookkeeping as bookkeeping

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def window(context):
    """A sliding window: at most `window` calls in flight, refilled as any of them ends."""
    spec = context.get_input()
    options = df.RetryOptions(1000, 2)
    pending, results, queued = {}, {}, list(range(spec["count"]))

    def add():
        n = queued.pop(0)
        task = (context.call_activity_with_retry("W", options, n) if spec["retry"]
                else context.call_activity("W", n))
        pending[task] = n
    while queued and len(pending) < spec["window"]:
        add()
    while pending:
        done = yield context.task_any(list(pending))
        results[pending.pop(done)] = done.result
        if queued:
            add()
    return [results[n] for n in sorted(results)]


@app.orchestration_trigger(context_name="context")
def await_rest_then_fan_out(context):
    options = df.RetryOptions(1000, 2)
    handles = [context.call_activity_with_retry("W", options, n) for n in ("a", "b", "c")]
    first = yield context.task_any(handles)
    pending = [task for task in handles if task is not first]
    while pending:
        pending.remove((yield context.task_any(pending)))
    return (yield context.task_all([context.call_activity_with_retry("W", options, n) for n in "de"]))


@app.orchestration_trigger(context_name="context")
def all_then_next(context):
    try:
        yield context.task_all([context.call_activity("A"), context.call_activity("B")])
    except Exception:
        pass
    return (yield context.call_activity("C"))


HANDLES = {f.get_function_name(): f.get_user_function() for f in app.get_functions()}
HANDLES["retry_beside_plain"] = bookkeeping.HANDLES["retry_beside_plain"]  # the same orchestrator, tested there too


class Engine:
    """Episodes as the engine plays them, with Book.episode."""

    def __init__(self, name: str, run_input=None):
        self.handle, self.input = HANDLES[name], json.dumps(run_input)
        self.history: list[dict] = []
        self.book = act.Book()
        self.now = T0
        self.result = None

    def episode(self, *events: dict) -> list[act.Command]:
        self.now += timedelta(seconds=1)
        new = [event(EventType.OrchestratorStarted, self.now), *events]
        self.result = replay(self.handle, instance_id="i", input_text=self.input,
                             history=[dict(e, IsPlayed=True) for e in self.history] + new,
                             parent_instance_id=None)
        assert self.result.error is None, self.result.error
        book = act.Book.from_json(json.loads(json.dumps(self.book.to_json())))  # as stored
        commands = book.episode(self.result.actions, self.history + new)
        self.book = book
        self.history += new + [self._record(c) for c in commands if not isinstance(c, act.CancelTimer)]
        return commands

    def _record(self, cmd: act.Command) -> dict:
        if isinstance(cmd, act.ScheduleActivity):
            return event(EventType.TaskScheduled, self.now, cmd.task_id, Name=cmd.name, Input=cmd.input)
        if isinstance(cmd, act.StartTimer):
            return event(EventType.TimerCreated, self.now, cmd.timer_id, FireAt=iso(cmd.fire_at))
        return event(EventType.SubOrchestrationInstanceCreated, self.now, cmd.task_id, Name=cmd.name,
                     InstanceId=cmd.instance_id)

    def start(self) -> list[act.Command]:
        return self.episode(event(EventType.ExecutionStarted, self.now, Name="x", Version=None,
                                  Input=self.input))

    def done(self, task_id: int, value=None) -> dict:
        return event(EventType.TaskCompleted, self.now, TaskScheduledId=task_id, Result=json.dumps(value))

    def failed(self, task_id: int) -> dict:
        return event(EventType.TaskFailed, self.now, TaskScheduledId=task_id, Reason="boom", Details="")

    def fired(self, timer_id: int) -> dict:
        return event(EventType.TimerFired, self.now, TimerId=timer_id)


def ids(commands: list[act.Command]) -> list[str]:
    """'A0' for an activity named A with id 0, 'T3' for timer 3."""
    return [f"{c.name}{c.task_id}" if isinstance(c, act.ScheduleActivity) else f"T{c.timer_id}"
            for c in commands]


# --- ids follow the replayed events ----------------------------------------------------------
@pytest.mark.parametrize("failure_first", [True, False])
def test_a_retry_and_new_work_arriving_together_take_ids_in_event_order(failure_first):
    e = Engine("retry_beside_plain")
    assert ids(e.start()) == ["A0", "B1"]
    # A's failure starts its retry timer while it is replayed; B's result ends the task_any, so D
    # is invoked while B's result is replayed. No pacing: both events in one episode.
    if failure_first:
        assert ids(e.episode(e.failed(0), e.done(1, "b"))) == ["T2", "D3"]
        timer, d = 2, 3
    else:
        assert ids(e.episode(e.done(1, "b"), e.failed(0))) == ["D2", "T3"]
        timer, d = 3, 2
    assert e.book.is_retry_event(e.fired(timer)) and e.book.is_retry_event(e.failed(0))
    assert ids(e.episode(e.fired(timer), e.done(d, "d"))) == ["A4"]  # the next attempt
    e.episode(e.done(4, "a"))
    assert e.result.is_done and e.result.output == ["d", "a"]  # the SDK counted the same ids


def test_retry_timers_back_off_from_the_episode_time_and_the_last_one_fires_at_once():
    book = act.Book()
    retry = {"actionType": act.CALL_ACTIVITY_RETRY, "functionName": "A", "input": None,
             "retryOptions": {"firstRetryIntervalInMilliseconds": 1000, "maxNumberOfAttempts": 3,
                              "backoffCoefficient": 3, "maxRetryIntervalInMilliseconds": 2500}}
    history = [event(EventType.OrchestratorStarted, T0),
               event(EventType.ExecutionStarted, T0, Name="x", Input=None)]
    assert ids(book.episode([retry], history)) == ["A0"]
    history.append(event(EventType.TaskScheduled, T0, 0, Name="A"))

    def step(seconds: int, *events: dict) -> list[act.Command]:
        history.extend([event(EventType.OrchestratorStarted, T0 + timedelta(seconds=seconds)), *events])
        commands = book.episode([retry], history)
        history.extend(event(EventType.TimerCreated, T0, c.timer_id) if isinstance(c, act.StartTimer)
                       else event(EventType.TaskScheduled, T0, c.task_id, Name="A") for c in commands)
        return commands

    failed = {"TaskScheduledId": None, "Reason": "boom", "Details": ""}
    first = step(10, event(EventType.TaskFailed, T0, **{**failed, "TaskScheduledId": 0}))
    assert first == [act.StartTimer(1, T0 + timedelta(seconds=11))]  # 1000 ms * 3^0
    assert ids(step(11, event(EventType.TimerFired, T0, TimerId=1))) == ["A2"]
    second = step(20, event(EventType.TaskFailed, T0, **{**failed, "TaskScheduledId": 2}))
    assert second == [act.StartTimer(3, T0 + timedelta(seconds=22.5))]  # 3000 ms, capped at 2500
    assert ids(step(23, event(EventType.TimerFired, T0, TimerId=3))) == ["A4"]
    last = step(30, event(EventType.TaskFailed, T0, **{**failed, "TaskScheduledId": 4}))
    assert last == [act.StartTimer(5, T0 + timedelta(seconds=30))]  # "Dummy timer for back-compat"


def test_an_elapsed_retry_timeout_raises_without_a_timer():
    book = act.Book()
    retry = {"actionType": act.CALL_ACTIVITY_RETRY, "functionName": "A", "input": None,
             "retryOptions": {"firstRetryIntervalInMilliseconds": 1000, "maxNumberOfAttempts": 5,
                              "retryTimeoutInMilliseconds": 5000}}
    history = [event(EventType.OrchestratorStarted, T0), event(EventType.ExecutionStarted, T0, Name="x"),
               event(EventType.TaskScheduled, T0, 0, Name="A"),
               event(EventType.OrchestratorStarted, T0 + timedelta(seconds=6)),
               event(EventType.TaskFailed, T0, TaskScheduledId=0, Reason="boom", Details="")]
    book.next_id = 1
    book.recorded = [[act.CALL_ACTIVITY_RETRY, "A", 0, False]]
    assert book.episode([retry], history) == []


# --- the extension awaits one action at a time -------------------------------------------------
def test_a_new_task_waits_until_the_task_the_extension_awaits_completes():
    """The SDK sends task_any of tasks yielded before as the new children only, and the
    extension awaits that: the window is refilled only when the newest call ends."""
    e = Engine("window", {"count": 4, "window": 2, "retry": False})
    assert ids(e.start()) == ["W0", "W1"]
    assert ids(e.episode(e.done(0, "r0"))) == ["W2"]  # the extension now awaits W2 only
    assert ids(e.episode(e.done(1, "r1"))) == []  # the SDK asks for W3: not invoked yet
    assert e.book.recorded[-1][:3] == [act.CALL_ACTIVITY, "W", None]
    assert ids(e.episode(e.done(2, "r2"))) == ["W3"]  # W2 done: W3 is invoked, id 3 as in the SDK
    e.episode(e.done(3, "r3"))
    assert e.result.is_done and e.result.output == ["r0", "r1", "r2", "r3"]


def test_task_all_is_awaited_until_every_child_ends_even_after_a_failure():
    e = Engine("all_then_next")
    assert ids(e.start()) == ["A0", "B1"]
    assert ids(e.episode(e.failed(0))) == []  # the SDK moved on to C; the extension awaits B
    assert ids(e.episode(e.done(1))) == ["C2"]


# --- SDK 1.x issue #603 -----------------------------------------------------------------------
def test_issue_603_the_replay_runs_ahead_and_fails_as_non_deterministic():
    e = Engine("await_rest_then_fan_out")
    assert ids(e.start()) == ["W0", "W1", "W2"]
    assert ids(e.episode(e.done(2, "c"))) == []  # the extension has invoked every action
    assert ids(e.episode(e.failed(0), e.done(1, "b"))) == ["T3"]  # a's retry timer
    assert ids(e.episode(e.fired(3))) == ["W4"]  # a's second attempt
    new = [event(EventType.OrchestratorStarted, e.now + timedelta(seconds=1)), e.done(4, "a")]
    result = replay(e.handle, instance_id="i", input_text=e.input,
                    history=[dict(x, IsPlayed=True) for x in e.history] + new, parent_instance_id=None)
    assert not result.is_done  # the SDK fans out d and e ...
    # ... which the extension's replay invokes when c's result is replayed: ids 3 and 4, so the
    # recorded retry timer 3 no longer matches.
    with pytest.raises(act.NonDeterminismError) as caught:
        e.book.episode(result.actions, e.history + new)
    assert str(caught.value) == (
        "Non-Deterministic workflow detected: A previous execution of this orchestration scheduled a "
        "timer task with sequence number 3 named but the current orchestration replay instead produced "
        "a ScheduleTaskOrchestratorAction action with this sequence number. Was a change made to the "
        "orchestrator code after this instance had already started running?")


def test_issue_603_a_retry_while_the_replay_lags_hands_results_to_the_wrong_tasks():
    e = Engine("window", {"count": 5, "window": 3, "retry": True})
    assert ids(e.start()) == ["W0", "W1", "W2"]
    assert ids(e.episode(e.done(1, "r1"))) == ["W3"]
    assert ids(e.episode(e.done(2, "r2"))) == []  # the SDK gave W4 id 4; not invoked yet
    assert ids(e.episode(e.failed(0))) == ["T4"]  # the retry timer takes id 4 instead
    assert ids(e.episode(e.fired(4))) == ["W5"]  # ... so the SDK's W4 gets the timer's firing
    assert ids(e.episode(e.done(5, "r0"))) == []
    assert ids(e.episode(e.done(3, "r3"))) == ["W6"]  # W4 at last
    e.episode(e.done(6, "r4"))
    # The SDK completes, W0's result being W4's and W4's none: what Azure does too.
    assert e.result.is_done and e.result.output == ["r4", "r1", "r2", "r3", None]


# --- non-determinism and bookkeeping -------------------------------------------------------------
def test_a_recorded_task_the_replay_does_not_schedule_is_non_determinism():
    history = [event(EventType.OrchestratorStarted, T0), event(EventType.ExecutionStarted, T0, Name="x"),
               event(EventType.TaskScheduled, T0, 0, Name="A"),
               event(EventType.TaskScheduled, T0, 1, Name="B")]
    with pytest.raises(act.NonDeterminismError, match=r"^Non-Deterministic workflow detected: A previous "
                       r"execution of this orchestration scheduled an activity task with sequence ID 1 and "
                       r"name 'B' \(version ''\), but the current replay execution hasn't \(yet\?\)"):
        act.Book().episode([{"actionType": act.CALL_ACTIVITY, "functionName": "A"}], history)


def test_flatten_records_where_each_action_sits_and_the_tree_is_rebuilt_from_it():
    payload = [[{"actionType": act.WHEN_ANY, "compoundActions": [
        {"actionType": act.CALL_ACTIVITY, "functionName": "a"},
        {"actionType": act.WHEN_ALL, "compoundActions": [
            {"actionType": act.WAIT_EVENT, "externalEventName": "e"},
            {"actionType": act.CALL_ACTIVITY, "functionName": "b"}]},
    ]}, {"actionType": act.CALL_ACTIVITY, "functionName": "c"}]]
    flat = act.flatten(payload)
    assert [a[act.PATH_KEY] for a in flat] == [
        [[0, act.WHEN_ANY], [0, act.CALL_ACTIVITY]],
        [[0, act.WHEN_ANY], [1, act.WHEN_ALL], [0, act.WAIT_EVENT]],
        [[0, act.WHEN_ANY], [1, act.WHEN_ALL], [1, act.CALL_ACTIVITY]],
        [[1, act.CALL_ACTIVITY]],
    ]
    tops = act._tree(flat)
    assert [t.kind for t in tops] == [act.WHEN_ANY, act.CALL_ACTIVITY]
    assert [c.kind for c in tops[0].children] == [act.CALL_ACTIVITY, act.WHEN_ALL]
    assert [c.leaf for c in tops[0].children[1].children] == [1, 2]


def test_an_event_raised_before_the_wait_completes_it_when_invoked():
    actions = act.flatten([[{"actionType": act.WAIT_EVENT, "externalEventName": "Go"},
                            {"actionType": act.CALL_ACTIVITY, "functionName": "after"}]])
    history = [event(EventType.OrchestratorStarted, T0), event(EventType.EventRaised, T0, Name="go"),
               event(EventType.ExecutionStarted, T0, Name="x")]
    # The event was buffered (names are case-insensitive), so the wait ends at once.
    assert ids(act.Book().episode(actions, history)) == ["after0"]
