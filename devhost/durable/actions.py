"""What the orchestrator asked for, turned into work for the host: pure bookkeeping, no I/O.

The SDK returns the whole, append-only list of actions of the current execution on every replay
(one action per `yield`; `task_any`/`task_all` are compound actions holding only the children
not yielded before). The task ids in history (EventId of TaskScheduled, TimerCreated and
SubOrchestrationInstanceCreated; TaskScheduledId/TimerId of completions) are not the SDK's: the
extension allocates them, and this module allocates them the same way.

How the extension does it (azure-functions-durable-extension 2.13/3.x; DurableTask.Core 2.17 to
3.x, the same code):
- Every episode, DTFx replays the whole history from scratch (TaskOrchestrationExecutor.ExecuteCore,
  events in order, continuations run inline on a SynchronousTaskScheduler). At ExecutionStarted
  the extension calls the Python function once, with the full history, and replays the actions it
  returned (OutOfProcOrchestrationShim.ProcessAsyncActionsV2): it invokes the actions one at a
  time, in list order, and awaits each before invoking the next one; a compound action invokes all
  its children at once and is awaited as Task.WhenAny / Task.WhenAll of them (WhenAll waits for
  every child, failed ones included).
- Invoking an activity, a sub-orchestration or a timer takes the next value of DTFx's id counter
  (TaskOrchestrationContext.ScheduleTaskInternal, CreateSubOrchestrationInstanceCore, CreateTimer:
  `idCounter++`); waiting for an external event takes none. A timer that comes back cancelled is
  created and cancelled at once, so awaiting it completes immediately.
- `*_with_retry` goes through DurableOrchestrationContext.CallDurableTaskFunctionAsync to
  OrchestrationContext.ScheduleWithRetry / CreateSubOrchestrationInstanceWithRetry, i.e. a
  RetryInterceptor: the first attempt takes an id when invoked; when an attempt fails, the
  interceptor's continuation runs while that failure event is processed and creates the retry
  timer (next id, fires at the episode's time + firstRetryInterval * backoff^n, capped at
  maxRetryInterval, 6 days by default); when that timer fires, the next attempt takes the next id.
  After the last failed attempt it creates one more timer that fires at once ("Dummy timer for
  back-compat") and raises the error when it fires. With retryTimeout elapsed it raises at once,
  without a timer.
- While replaying history, each TaskScheduled / TimerCreated / SubOrchestrationInstanceCreated must
  name an id the replay allocated to an action of the same kind and name, else DTFx fails the
  instance with NonDeterministicOrchestrationException (TaskOrchestrationContext.
  HandleTaskScheduledEvent etc.); the messages below are DTFx's. Completions for ids that are not
  open are ignored (LogDuplicateEvent).

The SDK (azure-functions-durable 1.x) numbers tasks with its own counter as they are yielded, and
rebuilds retries itself (Task.py RetryAbleTask: a timer, then the next attempt, each taking the
next SDK number when the event is processed). Both agree while the extension's replay keeps up
with the SDK. They disagree when the SDK moves on through a task of an earlier `task_any` that the
extension is not awaiting (the compound action only holds the new children): the extension has
not invoked the SDK's new actions yet when a retry timer or attempt takes an id, so completions
reach the wrong SDK tasks (wrong results, or an SDK task nothing completes: the instance stays
Running). Or the extension had invoked every action and waited for the next one: once the SDK
returns it, the extension's next replay invokes it where it was waiting, before the retry ids
it recorded since, and fails the instance with NonDeterministicOrchestrationException. That is
SDK issue #603 (wontfix for 1.x); devhost reproduces it because it allocates ids as the extension
does. Without retries the ids agree, but a new task of a later `task_any` is only scheduled once
the task the extension awaits completes.

Not modelled: the extension completes (or fails) an instance only once its replay has awaited
every action and no task is open (TaskOrchestrationExecutor: `HasOpenTasks`); devhost ends it
when the SDK says it is done.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, NoReturn

from devhost.durable.history import EventType, event, iso, parse_iso

CALL_ACTIVITY, CALL_ACTIVITY_RETRY, CALL_SUB, CALL_SUB_RETRY = 0, 1, 2, 3
CONTINUE_AS_NEW, CREATE_TIMER, WAIT_EVENT = 4, 5, 6
CALL_ENTITY, CALL_HTTP, SIGNAL_ENTITY = 7, 8, 9
WHEN_ANY, WHEN_ALL = 11, 12
UNSUPPORTED = {CALL_ENTITY: "call_entity", CALL_HTTP: "call_http", SIGNAL_ENTITY: "signal_entity"}
# Where flatten() found each action in the SDK's payload: [[index, actionType], ...] from the
# top-level action down to the action itself.
PATH_KEY = "devhostPath"
# The extension's RetryOptions.MaxRetryInterval default (RetryOptions.cs, DefaultMaxRetryinterval).
DEFAULT_MAX_RETRY_INTERVAL_MS = 6 * 24 * 3600 * 1000.0
DTFX_NON_DETERMINISM = "Non-Deterministic workflow detected: "
CHANGED_CODE = ("Was a change made to the orchestrator code after this instance had already "
                "started running?")


class NonDeterminismError(Exception):
    """The replay does not match what was already recorded; the message is complete."""


class UnsupportedActionError(Exception):
    """An action devhost does not run (entities, durable HTTP)."""


def flatten(payload: Any) -> list[dict[str, Any]]:
    """Actions in the order ids are allocated: nested lists and compound actions unrolled.

    Each action also gets PATH_KEY, its place in the payload, so that the tree the extension
    replays can be rebuilt from this flat list (Book). The payload is the V2/V3 schema's
    `[[action, action, ...]]`: one top-level action per yield."""
    out: list[dict[str, Any]] = []

    def walk(node: Any, path: list[list[int]]) -> None:
        if isinstance(node, list):  # a V1 yield set: the shim awaits any of its actions
            for index, item in enumerate(node):
                walk(item, path + [[index, _kind(item)]])
        elif isinstance(node, dict):
            if node.get("actionType") in (WHEN_ANY, WHEN_ALL):
                for index, child in enumerate(node.get("compoundActions") or []):
                    walk(child, path + [[index, _kind(child)]])
            else:
                node[PATH_KEY] = path
                out.append(node)

    top = payload[0] if isinstance(payload, list) and len(payload) == 1 else payload
    for index, item in enumerate(top or []):
        walk(item, [[index, _kind(item)]])
    return out


def _kind(node: Any) -> int:
    return WHEN_ANY if isinstance(node, list) else node.get("actionType", -1)


def _name_of(action: dict[str, Any]) -> str:
    return action.get("functionName") or action.get("externalEventName") or ""


@dataclass
class ScheduleActivity:
    task_id: int
    name: str
    input: str | None


@dataclass
class StartTimer:
    timer_id: int
    fire_at: datetime


@dataclass
class StartSubOrchestration:
    task_id: int
    name: str
    input: str | None
    instance_id: str | None


@dataclass
class CancelTimer:
    timer_id: int


Command = ScheduleActivity | StartTimer | StartSubOrchestration | CancelTimer


# --- the extension's replay ----------------------------------------------------------------
class _Task:
    """A .NET task as the replay sees it: completes once, then runs its continuations inline."""

    __slots__ = ("done", "ok", "_then")

    def __init__(self) -> None:
        self.done, self.ok = False, False
        self._then: list[Callable[[], None]] = []

    def then(self, callback: Callable[[], None]) -> None:
        if self.done:
            callback()
        else:
            self._then.append(callback)

    def finish(self, ok: bool) -> None:
        if self.done:
            return
        self.done, self.ok = True, ok
        callbacks, self._then = self._then, []
        for callback in callbacks:
            callback()


@dataclass
class _Alloc:
    """One id the extension allocated: what DTFx would schedule under it."""
    kind: str  # "activity", "timer", "sub"
    name: str
    input: str | None = None
    instance_id: str | None = None
    fire_at: datetime | None = None
    leaf: int | None = None  # index of the SDK action it belongs to
    role: str = ""  # "attempt" / "timer" for ids a retry interceptor took
    cancelled: bool = False  # a timer created already cancelled


# DTFx's names for the actions, as NonDeterministicOrchestrationException prints them.
_DTFX_ACTION = {"activity": "ScheduleTaskOrchestratorAction", "timer": "CreateTimerOrchestratorAction",
                "sub": "CreateSubOrchestrationAction"}


@dataclass
class _Node:
    kind: int
    leaf: int | None = None  # index in the flat action list, for leaves
    action: dict[str, Any] | None = None
    children: list["_Node"] = field(default_factory=list)


def _tree(actions: list[dict[str, Any]]) -> list[_Node]:
    """The top-level actions, rebuilt from flatten()'s PATH_KEY (a flat list without it: each
    action is a top-level one)."""
    tops: list[_Node] = []
    index_of: dict[tuple, _Node] = {}
    for leaf, action in enumerate(actions):
        path = action.get(PATH_KEY) or [[leaf, action.get("actionType")]]
        siblings, prefix = tops, ()
        for depth, (index, kind) in enumerate(path):
            prefix = prefix + (index,)
            node = index_of.get(prefix)
            if node is None:
                is_leaf = depth == len(path) - 1
                node = _Node(kind, leaf if is_leaf else None, action if is_leaf else None)
                index_of[prefix] = node
                siblings.append(node)
            siblings = node.children
    return tops


class _Replay:
    """DTFx replaying the history with the SDK's actions, as the extension runs it: allocates ids,
    checks the recorded ones, and says what is new (module docstring)."""

    def __init__(self, actions: list[dict[str, Any]]):
        self.actions = actions
        self.tops = _tree(actions)
        self.next_id = 0
        self.allocated: dict[int, _Alloc] = {}
        self.unmatched: dict[int, _Alloc] = {}  # DTFx's orchestratorActionsMap
        self.open: dict[int, _Task] = {}  # DTFx's openTasks
        self.waiters: dict[str, list[_Task]] = {}  # the extension's pendingExternalEvents (a stack)
        self.buffered: dict[str, int] = {}  # bufferedExternalEvents
        self.now: datetime | None = None
        self.started = False
        self.position = 0  # the next top-level action the shim invokes

    # --- history ---------------------------------------------------------------------------
    def run(self, events: list[dict[str, Any]]) -> "_Replay":
        for ev in events:
            kind = ev["EventType"]
            if kind == EventType.OrchestratorStarted:
                self.now = parse_iso(ev["Timestamp"])
            elif kind == EventType.ExecutionStarted:
                self.start()
            elif kind == EventType.TaskScheduled:
                self._match(ev, "activity")
            elif kind == EventType.TimerCreated:
                self._match(ev, "timer")
            elif kind == EventType.SubOrchestrationInstanceCreated:
                self._match(ev, "sub")
            elif kind in (EventType.TaskCompleted, EventType.SubOrchestrationInstanceCompleted):
                self._complete(ev.get("TaskScheduledId"), True)
            elif kind in (EventType.TaskFailed, EventType.SubOrchestrationInstanceFailed):
                self._complete(ev.get("TaskScheduledId"), False)
            elif kind == EventType.TimerFired:
                self._complete(ev.get("TimerId"), True)
            elif kind == EventType.EventRaised:
                self._raise(ev.get("Name") or "")
            # ExecutionSuspended/Resumed change nothing here: devhost delivers no event while an
            # instance is suspended (DTFx would hold them back until ExecutionResumed).
        return self

    def start(self) -> None:
        if not self.started:
            self.started = True
            self._advance()

    def _complete(self, task_id: Any, ok: bool) -> None:
        task = self.open.pop(task_id, None) if isinstance(task_id, int) else None
        if task is not None:  # else a duplicate, or a cancelled timer: DTFx ignores it
            task.finish(ok)

    def _raise(self, name: str) -> None:
        key = name.lower()
        stack = self.waiters.get(key)
        if stack:
            stack.pop().finish(True)
        else:
            self.buffered[key] = self.buffered.get(key, 0) + 1

    def _match(self, ev: dict[str, Any], kind: str) -> None:
        """TaskOrchestrationContext.HandleTaskScheduledEvent / HandleTimerCreatedEvent /
        HandleSubOrchestrationCreatedEvent."""
        task_id, name = ev.get("EventId"), ev.get("Name") or ""
        alloc = self.unmatched.get(task_id)
        if kind == "activity":
            what = f"an activity task with sequence number {task_id}"
            if alloc is None:
                self._fail(f"A previous execution of this orchestration scheduled an activity task with "
                           f"sequence ID {task_id} and name '{name}' (version ''), but the current replay "
                           f"execution hasn't (yet?) scheduled this task. {CHANGED_CODE}")
            if alloc.kind != kind:
                self._fail(f"A previous execution of this orchestration scheduled {what} named '{name}', "
                           f"but the current orchestration replay instead produced a "
                           f"{_DTFX_ACTION[alloc.kind]} action with this sequence number. {CHANGED_CODE}")
            if alloc.name.lower() != name.lower():
                self._fail(f"A previous execution of this orchestration scheduled {what} named '{name}', "
                           f"but the current orchestration replay instead scheduled an activity task "
                           f"named '{alloc.name}' with this sequence number.  {CHANGED_CODE}")
        elif kind == "timer":
            if alloc is None:
                self._fail(f"A previous execution of this orchestration scheduled a timer task with "
                           f"sequence number {task_id} but the current replay execution hasn't (yet?) "
                           f"scheduled this task. {CHANGED_CODE}")
            if alloc.kind != kind:
                self._fail(f"A previous execution of this orchestration scheduled a timer task with "
                           f"sequence number {task_id} named but the current orchestration replay instead "
                           f"produced a {_DTFX_ACTION[alloc.kind]} action with this sequence number. "
                           f"{CHANGED_CODE}")
        else:
            what = (f"a sub-orchestration task with sequence ID {task_id} and name '{name}' (version '', "
                    f"instance ID '{ev.get('InstanceId')}')")
            if alloc is None:
                self._fail(f"A previous execution of this orchestration scheduled {what}, but the current "
                           f"replay execution hasn't (yet?) scheduled this task. {CHANGED_CODE}")
            if alloc.kind != kind:
                self._fail(f"A previous execution of this orchestration scheduled {what}, but the current "
                           f"orchestration replay instead produced a {_DTFX_ACTION[alloc.kind]} action at "
                           f"this sequence number. {CHANGED_CODE}")
            if alloc.name.lower() != name.lower():
                self._fail(f"A previous execution of this orchestration scheduled {what}, but the current "
                           f"orchestration replay instead scheduled a sub-orchestration task with name "
                           f"{alloc.name} at this sequence number. {CHANGED_CODE}")
        del self.unmatched[task_id]

    @staticmethod
    def _fail(details: str) -> NoReturn:
        raise NonDeterminismError(DTFX_NON_DETERMINISM + details)

    # --- OutOfProcOrchestrationShim.ProcessAsyncActionsV2 -----------------------------------
    def _advance(self) -> None:
        """Invoke the next actions until one has to be awaited. Past the last one the shim waits
        forever (Task.Delay(Infinite)) unless the orchestrator is done."""
        while self.position < len(self.tops):
            task = self._invoke(self.tops[self.position])
            self.position += 1
            if not task.done:
                task.then(self._advance)
                return

    def _invoke(self, node: _Node) -> _Task:
        """OutOfProcOrchestrationShim.InvokeAPIFromAction."""
        if node.kind in (WHEN_ANY, WHEN_ALL):
            children = [self._invoke(child) for child in node.children]
            task = _Task()
            if node.kind == WHEN_ANY:
                for child in children:
                    child.then(lambda: task.finish(True))
            else:
                left = [len(children)]

                def one_done() -> None:
                    left[0] -= 1
                    if left[0] == 0:
                        task.finish(True)
                for child in children:
                    child.then(one_done)
                if not children:
                    task.finish(True)
            return task
        action, kind = node.action or {}, node.kind
        if kind in UNSUPPORTED:
            raise UnsupportedActionError(f"{UNSUPPORTED[kind]} is not supported by devhost")
        if kind in (CALL_ACTIVITY, CALL_SUB):
            return self._call(action, node.leaf, "")
        if kind in (CALL_ACTIVITY_RETRY, CALL_SUB_RETRY):
            return self._with_retry(action, node.leaf)
        if kind == CREATE_TIMER:
            fire_at = parse_iso(action["fireAt"])
            cancelled = bool(action.get("isCanceled"))
            timer_id, task = self._timer(fire_at, node.leaf, "", cancelled)
            if cancelled:  # cts.Cancel(): the timer task is cancelled and leaves openTasks
                del self.open[timer_id]
                task.finish(False)
            return task
        if kind == WAIT_EVENT:  # DurableOrchestrationContext.WaitForExternalEvent: no id
            task, key = _Task(), _name_of(action).lower()
            self.waiters.setdefault(key, []).append(task)
            if self.buffered.get(key):
                self.buffered[key] -= 1
                self._raise(key)
            return task
        if kind == CONTINUE_AS_NEW:
            task = _Task()
            task.finish(True)
            return task
        raise UnsupportedActionError(f"unknown actionType {kind}")

    # --- TaskOrchestrationContext -----------------------------------------------------------
    def _allocate(self, alloc: _Alloc) -> int:
        task_id = self.next_id
        self.next_id += 1
        self.allocated[task_id] = self.unmatched[task_id] = alloc
        return task_id

    def _open(self, task_id: int) -> _Task:
        task = self.open[task_id] = _Task()
        return task

    def _call(self, action: dict[str, Any], leaf: int | None, role: str) -> _Task:
        sub = action.get("actionType") in (CALL_SUB, CALL_SUB_RETRY)
        alloc = _Alloc("sub" if sub else "activity", action.get("functionName") or "", action.get("input"),
                       action.get("instanceId") if sub else None, leaf=leaf, role=role)
        return self._open(self._allocate(alloc))

    def _timer(self, fire_at: datetime, leaf: int | None, role: str,
               cancelled: bool = False) -> tuple[int, _Task]:
        timer_id = self._allocate(_Alloc("timer", "", fire_at=fire_at, leaf=leaf, role=role,
                                         cancelled=cancelled))
        return timer_id, self._open(timer_id)

    def _with_retry(self, action: dict[str, Any], leaf: int | None) -> _Task:
        """DurableTask.Core RetryInterceptor.Invoke with the extension's RetryOptions
        (RetryOptionsConverter: firstRetryIntervalInMilliseconds, maxNumberOfAttempts, and the
        optional backoffCoefficient, maxRetryIntervalInMilliseconds, retryTimeoutInMilliseconds)."""
        options = action.get("retryOptions") or {}
        attempts = int(options.get("maxNumberOfAttempts", 1))
        first_ms = float(options.get("firstRetryIntervalInMilliseconds", 0))
        coefficient = float(options.get("backoffCoefficient", 1))
        cap_ms = float(options.get("maxRetryIntervalInMilliseconds") or DEFAULT_MAX_RETRY_INTERVAL_MS)
        timeout_ms = options.get("retryTimeoutInMilliseconds")
        outer, started = _Task(), self.now
        count = [0]

        def attempt() -> None:
            inner = self._call(action, leaf, "attempt")
            inner.then(lambda: after(inner))

        def after(inner: _Task) -> None:
            if inner.ok:
                outer.finish(True)
                return
            if count[0] + 1 == attempts:  # the last one: one more timer, firing at once
                self._timer(self.now, leaf, "timer")[1].then(lambda: outer.finish(False))
                return
            if timeout_ms is not None and started is not None and self.now is not None and \
                    self.now >= started + timedelta(milliseconds=float(timeout_ms)):
                outer.finish(False)  # ComputeNextDelay answers zero: raise without a timer
                return
            delay_ms = min(first_ms * coefficient ** count[0], cap_ms)

            def fired() -> None:
                count[0] += 1
                attempt()
            self._timer(self.now + timedelta(milliseconds=delay_ms), leaf, "timer")[1].then(fired)

        if attempts <= 0:  # the interceptor's loop never runs
            outer.finish(True)
        else:
            attempt()
        return outer


@dataclass
class Book:
    """Per-execution bookkeeping, stored with the instance so a restart resumes it exactly.

    `episode()` is what the engine calls: it replays the execution's whole history (past events,
    then this episode's new ones) the way the extension does and answers the work that is new.
    `plan()` / `on_delivered()` do the same for drivers without a history of their own (tests):
    the book then keeps the history in memory, as the events and its own commands come."""

    next_id: int = 0  # ids the extension has allocated so far
    # One entry per SDK action (flatten order): [actionType, name, id or None, cancelled]
    recorded: list[list[Any]] = field(default_factory=list)
    # Ids a retry interceptor allocated: "attempt" or "timer".
    retry_ids: dict[str, str] = field(default_factory=dict)
    # Only for plan()/on_delivered(): the history so far, the SDK's latest actions, whether
    # plan() is called before the episode's events (then each event answers its own commands).
    log: list[dict[str, Any]] = field(default_factory=list, repr=False, compare=False)
    actions: list[dict[str, Any]] = field(default_factory=list, repr=False, compare=False)
    plan_first: bool | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"next_id": self.next_id, "recorded": self.recorded, "retry_ids": self.retry_ids}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "Book":
        data = data or {}
        return cls(data.get("next_id", 0), data.get("recorded", []), data.get("retry_ids", {}))

    # --- the engine --------------------------------------------------------------------------
    def episode(self, actions: list[dict[str, Any]], history: list[dict[str, Any]]) -> list[Command]:
        """The commands for one episode: `history` is the execution's history, this episode's
        delivered events included, without the events that record this episode's commands."""
        self._check_prefix(actions)
        replay = _Replay(actions).run(history)
        return self._commands(actions, replay)

    # --- drivers without a history -------------------------------------------------------------
    def plan(self, actions: list[dict[str, Any]]) -> list[Command]:
        """The SDK's actions after a replay."""
        if self.plan_first is None:
            self.plan_first = True
        self._check_prefix(actions)
        self.actions = list(actions)
        return self._sync()

    def on_delivered(self, ev: dict[str, Any], now: datetime) -> list[Command]:
        """An event the replay was given, at the episode's time `now`."""
        if self.plan_first is None:
            self.plan_first = False
        if ev["EventType"] == EventType.ExecutionStarted:
            if not self.log:  # else plan() came first and the replay has started already
                self.log += [event(EventType.OrchestratorStarted, now), ev]
        else:
            if self._episode_time() != now:
                self.log.append(event(EventType.OrchestratorStarted, now))
            self.log.append(ev)
        return self._sync() if self.plan_first else []

    def is_retry_event(self, ev: dict[str, Any]) -> bool:
        """A failed attempt of a `*_with_retry` call, or the firing of one of its timers."""
        kind = ev["EventType"]
        if kind in (EventType.TaskFailed, EventType.SubOrchestrationInstanceFailed):
            return self.retry_ids.get(str(ev.get("TaskScheduledId"))) == "attempt"
        if kind == EventType.TimerFired:
            return self.retry_ids.get(str(ev.get("TimerId"))) == "timer"
        return False

    def _episode_time(self) -> datetime | None:
        for ev in reversed(self.log):
            if ev["EventType"] == EventType.OrchestratorStarted:
                return parse_iso(ev["Timestamp"])
        return None

    def _sync(self) -> list[Command]:
        replay = _Replay(self.actions)
        if not any(ev["EventType"] == EventType.ExecutionStarted for ev in self.log):
            replay.start()  # a driver that never delivered ExecutionStarted: started already
        replay.run(self.log)
        commands = self._commands(self.actions, replay)
        for cmd in commands:  # record them as the engine would, for the next replays
            if isinstance(cmd, ScheduleActivity):
                self.log.append(event(EventType.TaskScheduled, replay.now or _EPOCH, cmd.task_id,
                                      Name=cmd.name, Input=cmd.input))
            elif isinstance(cmd, StartTimer):
                self.log.append(event(EventType.TimerCreated, replay.now or _EPOCH, cmd.timer_id,
                                      FireAt=iso(cmd.fire_at)))
            elif isinstance(cmd, StartSubOrchestration):
                self.log.append(event(EventType.SubOrchestrationInstanceCreated, replay.now or _EPOCH,
                                      cmd.task_id, Name=cmd.name, InstanceId=cmd.instance_id))
        return commands

    # --- shared ------------------------------------------------------------------------------
    def _check_prefix(self, actions: list[dict[str, Any]]) -> None:
        """The SDK's list is append-only; a change in what was already recorded is caught here,
        before the extension's replay would (with a message naming the action)."""
        if len(actions) < len(self.recorded):
            raise NonDeterminismError(
                f"Non-deterministic workflow detected: the orchestrator now yields {len(actions)} "
                f"actions where {len(self.recorded)} were already recorded")
        for index, (record, action) in enumerate(zip(self.recorded, actions)):
            kind, name = record[0], record[1]
            if action.get("actionType") != kind or _name_of(action) != name:
                raise NonDeterminismError(
                    f"Non-deterministic workflow detected: action #{index} was {kind}:{name!r} when "
                    f"first run and is now {action.get('actionType')}:{_name_of(action)!r}")
        for action in actions[len(self.recorded):]:
            kind = action.get("actionType")
            if kind in UNSUPPORTED:
                raise UnsupportedActionError(f"{UNSUPPORTED[kind]} is not supported by devhost")
            self.recorded.append([kind, _name_of(action), None, False])

    def _commands(self, actions: list[dict[str, Any]], replay: _Replay) -> list[Command]:
        """Timers to cancel first, then the new work, in allocation order. New is what DTFx
        would find unmatched at the end of the replay: the ids from `next_id` on, since every id
        below was scheduled in an earlier episode and checked against its event by the replay
        (or is a timer that was created cancelled, which devhost never starts)."""
        commands: list[Command] = []
        known = self.next_id
        for task_id, alloc in replay.allocated.items():
            if alloc.leaf is not None and self.recorded[alloc.leaf][2] is None:
                self.recorded[alloc.leaf][2] = task_id
            if alloc.role:
                self.retry_ids[str(task_id)] = alloc.role
        for index, action in enumerate(actions):
            record = self.recorded[index]
            if record[0] == CREATE_TIMER and action.get("isCanceled") and not record[3]:
                # A timer that lost a task_any race comes back cancelled. Azure lets it fire (and
                # ignores it); devhost deletes it.
                record[3] = True
                if record[2] is not None and record[2] < known:
                    commands.append(CancelTimer(record[2]))
        for task_id, alloc in replay.allocated.items():
            if task_id < known:
                continue
            if alloc.kind == "activity":
                commands.append(ScheduleActivity(task_id, alloc.name, alloc.input))
            elif alloc.kind == "sub":
                commands.append(StartSubOrchestration(task_id, alloc.name, alloc.input, alloc.instance_id))
            elif not alloc.cancelled:  # devhost never starts a timer that is cancelled already
                commands.append(StartTimer(task_id, alloc.fire_at))
        self.next_id = max(known, replay.next_id)
        return commands


_EPOCH = parse_iso("2000-01-01T00:00:00Z")
