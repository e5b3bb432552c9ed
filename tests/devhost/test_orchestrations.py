"""Durable orchestrations on devhost, driven through the SDK's client over real HTTP."""
from __future__ import annotations

import time

from tests.support.devhost_fixtures import wait_for


def test_activity_sequence(sample):
    instance = sample.start("sequence", ["Tokyo", "Seattle"])
    status = sample.wait_status(instance)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == ["Hello Tokyo!", "Hello Seattle!"]
    assert status["input"] == ["Tokyo", "Seattle"]


def test_fan_out_fan_in(sample):
    status = sample.wait_status(sample.start("fan_out", 60))
    assert status["output"] == sum(i * i for i in range(60))


def test_activities_run_concurrently_up_to_the_host_json_limit(sample):
    # sample_app/host.json sets maxConcurrentActivityFunctions to 4.
    status = sample.wait_status(sample.start("concurrency_probe", 12))
    assert status["output"] == 4


def test_retry_succeeds_after_failures(sample):
    status = sample.wait_status(sample.start("retrying", {"key": sample.new_id(), "failures": 2, "attempts": 3}))
    assert status["output"] == {"ok": "succeeded on attempt 3"}


def test_retry_exhausted_raises_last_error_into_the_orchestrator(sample):
    status = sample.wait_status(sample.start("retrying", {"key": sample.new_id(), "failures": 5, "attempts": 2}))
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"error": "Activity function 'flaky' failed: RuntimeError: attempt 2 failed "}


def test_sub_orchestrations_with_and_without_retry(sample):
    status = sample.wait_status(sample.start("parent", {"key": sample.new_id(), "failures": 1}))
    assert status["output"] == {
        "first": ["Hello A!", "Hello B!"],
        "second": "child succeeded on attempt 2",
        "third": "Orchestrator function 'failing' failed: bad thing happened ",
    }


def test_an_activity_with_a_durable_client_binding_starts_an_orchestration(sample):
    child = sample.new_id()
    status = sample.wait_status(sample.start("launcher", {"instance_id": child, "cities": ["Oslo"]}))
    assert status["output"] == {"started": child, "status_known": True, "missing_known": False}
    assert sample.wait_status(child)["output"] == ["Hello Oslo!"]


def test_durable_timer_waits_for_its_fire_time(sample):
    status = sample.wait_status(sample.start("timer", 2))
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] >= 2


def test_task_any_event_wins_and_timer_is_cancelled(sample):
    instance = sample.start("approval", 30)
    sample.wait_status(instance, {"Running"})
    assert sample.raise_event(instance, "approve", {"by": "ann"}).status_code == 202
    status = sample.wait_status(instance, timeout=10)
    # Azure hands Python the event payload one JSON level short (SDK issue #295).
    assert status["output"] == {"approved": '{"by": "ann"}'}


def test_task_any_timer_wins_when_no_event_comes(sample):
    status = sample.wait_status(sample.start("approval", 1))
    assert status["output"] == {"approved": None, "timed_out": True}


def test_event_raised_before_the_orchestrator_waits_is_delivered(sample):
    instance = sample.start("late_waiter")
    sample.wait_status(instance, {"Running"})
    assert sample.raise_event(instance, "go", 7).status_code == 202
    assert sample.wait_status(instance)["output"] == "7"


def test_custom_status_while_waiting_and_after(sample):
    instance = sample.start("wait_event")
    wait_for(lambda: sample.status(instance).get("customStatus") == {"stage": "waiting"},
             message="custom status 'waiting'")
    sample.raise_event(instance, "go", "payload")
    status = sample.wait_status(instance)
    assert status["customStatus"] == {"stage": "done"}
    assert status["output"] == {"received": '"payload"', "type": "str"}


def test_suspend_queues_events_until_resume(sample):
    instance = sample.start("wait_event")
    sample.wait_status(instance, {"Running"})
    assert sample.control(instance, "suspend").status_code == 202
    sample.wait_status(instance, {"Suspended"})
    sample.raise_event(instance, "go", 1)
    time.sleep(1.5)
    status = sample.status(instance)
    assert status["runtimeStatus"] == "Suspended" and status["output"] is None
    assert sample.control(instance, "resume").status_code == 202
    assert sample.wait_status(instance)["output"] == {"received": "1", "type": "str"}


def test_continue_as_new_keeps_history_bounded(sample):
    instance = sample.start("counter", {"n": 0, "limit": 6, "total": 0})
    status = sample.wait_status(instance)
    assert status["output"] == sum(i * i for i in range(6))
    assert status["input"] == {"n": 6, "limit": 6, "total": 55}
    history = sample.webhook("GET", f"instances/{instance}", params={"showHistory": "true"}).json()
    kinds = [e["EventType"] for e in history["historyEvents"]]
    # Only the last execution is kept: it started and completed at once.
    assert kinds == ["OrchestratorStarted", "ExecutionStarted", "ExecutionCompleted"]


def test_orchestrator_exception_fails_the_instance_with_its_message(sample):
    status = sample.wait_status(sample.start("failing"))
    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == "Orchestrator function 'failing' failed: bad thing happened"


def test_non_determinism_fails_the_instance(sample):
    status = sample.wait_status(sample.start("changes_its_mind"))
    assert status["runtimeStatus"] == "Failed"
    assert status["output"].startswith("Orchestrator function 'changes_its_mind' failed: "
                                       "Non-deterministic workflow detected: action #0 was 0:'say_hello'")


def test_terminate_running_instance_then_terminate_again_is_gone(sample):
    instance = sample.start("wait_event")
    sample.wait_status(instance, {"Running"})
    assert sample.control(instance, "terminate", reason="user cancelled").status_code == 202
    status = sample.wait_status(instance)
    assert status["runtimeStatus"] == "Terminated"
    assert status["output"] == "user cancelled"
    again = sample.webhook("POST", f"instances/{instance}/terminate", params={"reason": "x"})
    assert again.status_code == 410


def test_status_list_and_purge_through_the_sdk_client(sample):
    prefix = sample.new_id("batch")
    ids = [sample.start("sequence", ["x"], instance_id=f"{prefix}-{i}") for i in range(3)]
    for instance in ids:
        sample.wait_status(instance)
    listed = sample.http.get(sample.api("instances"), params={"prefix": prefix, "status": "Completed"}).json()
    assert listed == sorted(ids)
    assert sample.http.delete(sample.api(f"instances/{ids[0]}")).json() == {"deleted": 1}
    assert sample.status(ids[0]) == {"found": False}
    assert sample.http.delete(sample.api(f"instances/{ids[0]}")).json() == {"deleted": 0}
