"""History events in the shape the Python SDK reads (durable-protocol.md, "Orchestration context").

The SDK reads EventType, EventId, IsPlayed, Timestamp and a few type-specific keys; the rest
(TaskScheduled, TimerCreated, ExecutionCompleted...) are kept for our own bookkeeping and for
`showHistory`, as the real extension keeps them.
"""
from __future__ import annotations

from datetime import datetime, timezone
from enum import IntEnum
from typing import Any


class EventType(IntEnum):
    ExecutionStarted = 0
    ExecutionCompleted = 1
    ExecutionFailed = 2
    ExecutionTerminated = 3
    TaskScheduled = 4
    TaskCompleted = 5
    TaskFailed = 6
    SubOrchestrationInstanceCreated = 7
    SubOrchestrationInstanceCompleted = 8
    SubOrchestrationInstanceFailed = 9
    TimerCreated = 10
    TimerFired = 11
    OrchestratorStarted = 12
    OrchestratorCompleted = 13
    EventSent = 14
    EventRaised = 15
    ContinueAsNew = 16
    GenericEvent = 17
    HistoryState = 18
    ExecutionSuspended = 19
    ExecutionResumed = 20


# Events that resolve a task, and the key naming the task they resolve.
COMPLETION_KEYS = {
    EventType.TaskCompleted: "TaskScheduledId",
    EventType.TaskFailed: "TaskScheduledId",
    EventType.SubOrchestrationInstanceCompleted: "TaskScheduledId",
    EventType.SubOrchestrationInstanceFailed: "TaskScheduledId",
    EventType.TimerFired: "TimerId",
}
FAILURE_TYPES = {EventType.TaskFailed, EventType.SubOrchestrationInstanceFailed}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(ts: datetime) -> str:
    """ISO 8601 with microseconds and Z, stable across replays once stored."""
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_seconds(ts: datetime) -> str:
    """The management API's time format: yyyy-MM-ddTHH:mm:ssZ."""
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def event(kind: EventType, when: datetime, event_id: int = -1, **fields: Any) -> dict[str, Any]:
    return {"EventType": int(kind), "EventId": event_id, "IsPlayed": False,
            "Timestamp": iso(when), **fields}


def completed_task_id(ev: dict[str, Any]) -> int | None:
    """The task id a completion event resolves, or None for other events."""
    key = COMPLETION_KEYS.get(ev["EventType"])
    return ev.get(key) if key else None
