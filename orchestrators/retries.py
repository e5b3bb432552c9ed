"""Retries of failed activities, spelled out by the orchestrations: a durable timer, then the
same call again. No orchestrator of this app uses a `*_with_retry` API.

Why: azure-functions-durable 1.x numbers a retry's timer and next attempt with its own counter,
while the Durable extension allocates them in its retry interceptor, in its own order; with other
tasks scheduled around a retry the two part, and the orchestration is matched to the wrong results,
stays Running or fails as non-deterministic (docs/durable-retries.md; azure-functions-durable-python
issue 603, wontfix for 1.x). A plain `call_activity` and a plain `create_timer` take one id each,
when yielded, on both sides.

The attempts and the waits are bounded (RetryPolicy), and each retry is noted on the run's (or
the batch's) row by the `note_retry` activity, so the status routes show it while it waits.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df

NOTE_ACTIVITY = "note_retry"


@dataclass(frozen=True)
class RetryPolicy:
    """`max_attempts` calls in all; the wait after failed attempt n is first x backoff^(n-1), capped."""

    max_attempts: int = 4
    first_delay_seconds: float = 5
    backoff: float = 2
    max_delay_seconds: float = 60

    def delay(self, failed_attempt: int) -> timedelta:
        seconds = self.first_delay_seconds * self.backoff ** (failed_attempt - 1)
        return timedelta(seconds=min(seconds, self.max_delay_seconds))


# Transient failures (Graph still throttling after the client's own bounded wait, storage
# hiccups) get a few more tries, spaced out (5, 10, 20 s); permanent ones end the run in the
# activity itself (steps.py). A run's waves of lanes count their failed waves the same way.
STEP_RETRIES = RetryPolicy()


def error_message(exc: Exception) -> str:
    """The first line of a failure as the orchestrator sees it, bounded."""
    return (str(exc).split("\n")[0].strip() or type(exc).__name__)[:500]


def retry_note(owner: dict[str, Any], step: str, attempt: int, policy: RetryPolicy, exc: Exception,
               retry_at: datetime) -> dict[str, Any]:
    """The `note_retry` activity's input: whose row (`owner`: a run's or a batch's ids), which step
    failed, which attempt comes next, and when."""
    return {**owner, "retry": {"step": step, "attempt": attempt, "max_attempts": policy.max_attempts,
                               "error": error_message(exc), "retry_at": retry_at.isoformat()}}


def call_with_retries(context: df.DurableOrchestrationContext, name: str, payload: Any, *,
                      owner: dict[str, Any], policy: RetryPolicy = STEP_RETRIES):
    """`result = yield from call_with_retries(...)`: one activity called alone (nothing else in
    flight), again after a durable timer when it fails, until `policy.max_attempts`; the last
    failure is raised."""
    attempt = 1
    while True:
        try:
            return (yield context.call_activity(name, payload))
        except Exception as exc:
            if attempt >= policy.max_attempts:
                raise
            retry_at = context.current_utc_datetime + policy.delay(attempt)
            attempt += 1
            try:
                yield context.call_activity(NOTE_ACTIVITY, retry_note(owner, name, attempt, policy, exc, retry_at))
            except Exception:  # a note that could not be stored does not stop the retry
                pass
            yield context.create_timer(retry_at)
