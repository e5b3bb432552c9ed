"""One replay of an orchestrator through the SDK's own code (durable-protocol.md).

The orchestrator's user function is the SDK's `handle(context)`: it takes the context JSON text
(history, input, instance id) and returns the orchestrator state JSON, or raises with that state
appended after `$OutOfProcData$:` when user code failed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from devhost.durable.actions import flatten

OUT_OF_PROC_LABEL = "\n\n$OutOfProcData$:"


@dataclass
class ReplayResult:
    is_done: bool
    actions: list[dict[str, Any]] = field(default_factory=list)
    output: Any = None
    error: str | None = None
    custom_status: Any = None


def _parse_failure(message: str) -> ReplayResult:
    start = message.find(OUT_OF_PROC_LABEL)
    while start != -1:
        try:
            state = json.loads(message[start + len(OUT_OF_PROC_LABEL):])
            return ReplayResult(is_done=True, actions=flatten(state.get("actions")),
                                error=state.get("error") or message[:start] or "unknown error",
                                custom_status=state.get("customStatus"))
        except ValueError:
            start = message.find(OUT_OF_PROC_LABEL, start + 1)
    return ReplayResult(is_done=True, error=message or "orchestrator failed")


def replay(handle: Callable[[str], str], *, instance_id: str, input_text: str | None,
           history: list[dict[str, Any]], parent_instance_id: str | None) -> ReplayResult:
    context = {
        "history": history,
        "input": input_text,
        "instanceId": instance_id,
        "isReplaying": any(ev.get("IsPlayed") for ev in history),
        "parentInstanceId": parent_instance_id,
        "upperSchemaVersion": 1,
    }
    try:
        raw = handle(json.dumps(context))
    except Exception as exc:  # user code failed, or the SDK itself did
        return _parse_failure(str(exc))
    state = json.loads(raw) if isinstance(raw, str) else raw
    return ReplayResult(is_done=bool(state.get("isDone")), actions=flatten(state.get("actions")),
                        output=state.get("output"), error=state.get("error"),
                        custom_status=state.get("customStatus"))
