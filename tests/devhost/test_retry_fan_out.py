"""`*_with_retry` in a fan-out: SDK issue #603 ends on devhost as it ends on Azure.

The extension replays the SDK's actions one at a time and awaits each before invoking the next
(OutOfProcOrchestrationShim.ProcessAsyncActionsV2), and allocates retry timers and attempts in the
RetryInterceptor's continuation while it replays the failure (DurableTask.Core). `retry_fan_out`
(sample app) awaits a, b and c in task_any; c is done first, so the extension has invoked every
action the SDK returned and stops there. a then fails (its retry timer takes id 3) in the same
episode as b's result. When a's second attempt succeeds, the SDK fans out d and e: replaying from
the start, the extension now invokes that fan-out when c's result is replayed, so d and e take
ids 3 and 4 and the recorded TimerCreated 3 is a ScheduleTask: DTFx fails the instance with
NonDeterministicOrchestrationException, before d or e runs. (Azure's output is DTFx's message
alone; devhost prefixes it as it prefixes every orchestrator failure.) The old devhost, which
paced retry events and used the SDK's numbering, completed it.
"""
from __future__ import annotations

import itertools

NON_DETERMINISM = (
    "Orchestrator function 'retry_fan_out' failed: Non-Deterministic workflow detected: A previous "
    "execution of this orchestration scheduled a timer task with sequence number 3 named but the "
    "current orchestration replay instead produced a ScheduleTaskOrchestratorAction action with this "
    "sequence number. Was a change made to the orchestrator code after this instance had already "
    "started running?")


def _episodes(history: list[dict]) -> list[list[str]]:
    """The history's event types, one list per episode (each starts with OrchestratorStarted)."""
    episodes: list[list[str]] = []
    for ev in history:
        if ev["EventType"] == "OrchestratorStarted" or not episodes:
            episodes.append([])
        episodes[-1].append(ev["EventType"])
    return episodes


def test_retry_in_a_task_any_fan_out_fails_as_non_deterministic_like_azure(sample, tmp_path):
    marks = tmp_path / "attempts"
    marks.mkdir()
    spec = {"dir": str(marks), "stall": 4, "retry_ms": 500, "calls": {
        "c": {"seconds": 0},                       # done first: the orchestrator stalls 4 s
        "a": {"seconds": 2, "fail_first": True},   # fails meanwhile (its second attempt succeeds)
        "b": {"seconds": 2.5},                     # done meanwhile, after a's failure
    }}
    instance = sample.start("retry_fan_out", spec)
    status = sample.wait_status(instance, timeout=60)

    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == NON_DETERMINISM
    # a ran twice (failed, then succeeded); the fan-out of d and e was never scheduled.
    assert sorted(p.name for p in marks.iterdir()) == ["a", "b", "c"]
    assert len((marks / "a").read_text().splitlines()) == 2

    history = sample.webhook("GET", f"instances/{instance}", params={"showHistory": "true"}).json()
    episodes = _episodes(history["historyEvents"])
    # a's failure and b's result arrived while the orchestrator stalled: one episode, in arrival
    # order, and the retry timer it created (no pacing of retry events).
    assert ["OrchestratorStarted", "TaskFailed", "TaskCompleted", "TimerCreated"] in episodes
    kinds = list(itertools.chain.from_iterable(episodes))
    assert kinds.count("TaskScheduled") == 4  # a, b, c and a's second attempt
    assert kinds[-1] == "ExecutionCompleted"
