"""What the orchestrator asked for, turned into work for the host: pure bookkeeping, no I/O.

The SDK returns the whole, append-only list of actions of the current execution on every
replay; the host records what it already acted on and acts on the new suffix. Task ids are the
SDK's own sequence numbers, assigned in the order tasks are yielded (children of task_all /
task_any in list order); wait-for-event takes none. Retries are run by the host, not the SDK:
a failed attempt reserves a timer id, the timer's firing reserves the next attempt's id, and
after the last failure one more timer must fire before the SDK raises the error into user code
(durable-protocol.md, "Task ids"). Those ids interleave with ids of new actions, which is why
the engine delivers at most one retry-related event per episode, and last: every id taken by
new actions of that episode comes before the one the retry takes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from devhost.durable.history import EventType, parse_iso

CALL_ACTIVITY, CALL_ACTIVITY_RETRY, CALL_SUB, CALL_SUB_RETRY = 0, 1, 2, 3
CONTINUE_AS_NEW, CREATE_TIMER, WAIT_EVENT = 4, 5, 6
CALL_ENTITY, CALL_HTTP, SIGNAL_ENTITY = 7, 8, 9
WHEN_ANY, WHEN_ALL = 11, 12
UNSUPPORTED = {CALL_ENTITY: "call_entity", CALL_HTTP: "call_http", SIGNAL_ENTITY: "signal_entity"}


class NonDeterminismError(Exception):
    """A replay's actions do not start with what was already recorded."""


class UnsupportedActionError(Exception):
    """An action devhost does not run (entities, durable HTTP)."""


def flatten(payload: Any) -> list[dict[str, Any]]:
    """Actions in the order the SDK assigned ids: nested lists and compound actions unrolled."""
    out: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if node.get("actionType") in (WHEN_ANY, WHEN_ALL):
                walk(node.get("compoundActions", []))
            else:
                out.append(node)

    walk(payload or [])
    return out


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


@dataclass
class Book:
    """Per-execution bookkeeping, stored with the instance so a restart resumes it exactly."""

    next_id: int = 0
    # One entry per recorded action: [actionType, name, task id or None, cancelled]
    recorded: list[list[Any]] = field(default_factory=list)
    # Retry groups by the id of their current attempt, and by the id of their pending timer.
    retries: dict[str, dict[str, Any]] = field(default_factory=dict)
    retry_timers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"next_id": self.next_id, "recorded": self.recorded,
                "retries": self.retries, "retry_timers": self.retry_timers}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "Book":
        data = data or {}
        return cls(data.get("next_id", 0), data.get("recorded", []),
                   data.get("retries", {}), data.get("retry_timers", {}))

    def _take_id(self) -> int:
        task_id = self.next_id
        self.next_id += 1
        return task_id

    # --- new actions -------------------------------------------------------------------
    def plan(self, actions: list[dict[str, Any]]) -> list[Command]:
        """Check the recorded prefix, then turn the new suffix into commands."""
        commands: list[Command] = []
        if len(actions) < len(self.recorded):
            raise NonDeterminismError(
                f"the orchestrator now yields {len(actions)} actions where {len(self.recorded)} "
                "were already recorded")
        for index, (record, action) in enumerate(zip(self.recorded, actions)):
            kind, name, task_id, cancelled = record
            if action.get("actionType") != kind or _name_of(action) != name:
                raise NonDeterminismError(
                    f"action #{index} was {kind}:{name!r} when first run and is now "
                    f"{action.get('actionType')}:{_name_of(action)!r}")
            # A timer that lost a task_any race comes back cancelled (durable-protocol.md).
            if kind == CREATE_TIMER and action.get("isCanceled") and not cancelled:
                record[3] = True
                commands.append(CancelTimer(task_id))
        for action in actions[len(self.recorded):]:
            commands.extend(self._plan_one(action))
        return commands

    def _plan_one(self, action: dict[str, Any]) -> list[Command]:
        kind = action.get("actionType")
        if kind in UNSUPPORTED:
            raise UnsupportedActionError(f"{UNSUPPORTED[kind]} is not supported by devhost")
        if kind == WAIT_EVENT:
            self.recorded.append([kind, _name_of(action), None, False])
            return []
        task_id = self._take_id()
        self.recorded.append([kind, _name_of(action), task_id, bool(action.get("isCanceled"))])
        if kind in (CALL_ACTIVITY, CALL_ACTIVITY_RETRY):
            if kind == CALL_ACTIVITY_RETRY:
                self._open_retry(task_id, action)
            return [ScheduleActivity(task_id, action["functionName"], action.get("input"))]
        if kind in (CALL_SUB, CALL_SUB_RETRY):
            if kind == CALL_SUB_RETRY:
                self._open_retry(task_id, action)
            return [StartSubOrchestration(task_id, action["functionName"], action.get("input"),
                                          action.get("instanceId"))]
        if kind == CREATE_TIMER:
            if action.get("isCanceled"):
                return []
            return [StartTimer(task_id, parse_iso(action["fireAt"]))]
        if kind == CONTINUE_AS_NEW:
            return []
        raise UnsupportedActionError(f"unknown actionType {kind}")

    # --- retries -------------------------------------------------------------------------
    def _open_retry(self, task_id: int, action: dict[str, Any]) -> None:
        self.retries[str(task_id)] = {
            "kind": action["actionType"], "name": action["functionName"],
            "input": action.get("input"), "instance_id": action.get("instanceId"),
            "options": action.get("retryOptions") or {}, "attempt": 1, "task_id": task_id,
        }

    def is_retry_event(self, ev: dict[str, Any]) -> bool:
        kind = ev["EventType"]
        if kind in (EventType.TaskFailed, EventType.SubOrchestrationInstanceFailed):
            return str(ev.get("TaskScheduledId")) in self.retries
        if kind == EventType.TimerFired:
            return str(ev.get("TimerId")) in self.retry_timers
        return False

    def on_delivered(self, ev: dict[str, Any], now: datetime) -> list[Command]:
        """Bookkeeping for a delivered completion; commands for retry-related ones."""
        kind = ev["EventType"]
        if kind in (EventType.TaskCompleted, EventType.SubOrchestrationInstanceCompleted):
            self.retries.pop(str(ev.get("TaskScheduledId")), None)
            return []
        if kind in (EventType.TaskFailed, EventType.SubOrchestrationInstanceFailed):
            group = self.retries.pop(str(ev.get("TaskScheduledId")), None)
            return [] if group is None else self._retry_timer(group, now)
        if kind == EventType.TimerFired:
            group = self.retry_timers.pop(str(ev.get("TimerId")), None)
            return [] if group is None else self._next_attempt(group)
        return []

    def _retry_timer(self, group: dict[str, Any], now: datetime) -> list[Command]:
        opts = group["options"]
        max_attempts = int(opts.get("maxNumberOfAttempts", 1))
        if group["attempt"] >= max_attempts:
            delay_ms = 0.0  # the extra timer the SDK waits for before raising; fire at once
        else:
            first = float(opts.get("firstRetryIntervalInMilliseconds", 0))
            coefficient = float(opts.get("backoffCoefficient", 1) or 1)
            delay_ms = first * coefficient ** (group["attempt"] - 1)
            cap = opts.get("maxRetryIntervalInMilliseconds")
            if cap:
                delay_ms = min(delay_ms, float(cap))
        timer_id = self._take_id()
        self.retry_timers[str(timer_id)] = group
        return [StartTimer(timer_id, now + timedelta(milliseconds=delay_ms))]

    def _next_attempt(self, group: dict[str, Any]) -> list[Command]:
        if group["attempt"] >= int(group["options"].get("maxNumberOfAttempts", 1)):
            return []
        task_id = self._take_id()
        group["attempt"] += 1
        group["task_id"] = task_id
        self.retries[str(task_id)] = group
        if group["kind"] == CALL_ACTIVITY_RETRY:
            return [ScheduleActivity(task_id, group["name"], group["input"])]
        return [StartSubOrchestration(task_id, group["name"], group["input"], group["instance_id"])]
