"""kill -9 of devhost loses nothing: orchestrations resume, activities re-run only when their
result was not stored, timers still fire, pending events are still delivered."""
from __future__ import annotations

import time

import requests

from tests.support.devhost_fixtures import wait_for


def _crash_and_restart(sample) -> None:
    sample.host.kill()
    sample.host.start()
    sample.http = requests.Session()  # pooled connections died with the process


def _task_completions(sample, instance: str) -> list[int]:
    body = sample.webhook("GET", f"instances/{instance}", params={"showHistory": "true"}).json()
    return sorted(e["TaskScheduledId"] for e in body["historyEvents"] if e["EventType"] == "TaskCompleted")


def test_kill_mid_run_then_restart_completes_with_every_result_once(sample):
    instance = sample.start("long_run", 12)
    wait_for(lambda: (sample.status(instance).get("customStatus") or {}).get("done", 0) >= 4,
             message="four activities done")
    _crash_and_restart(sample)
    status = sample.wait_status(instance, timeout=60)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == sum(i * i for i in range(12))
    assert _task_completions(sample, instance) == list(range(12))


def test_kill_twice_during_fan_out(sample):
    instance = sample.start("concurrency_probe", 16)
    sample.wait_status(instance, {"Running"})
    time.sleep(0.5)
    _crash_and_restart(sample)
    time.sleep(0.5)
    _crash_and_restart(sample)
    status = sample.wait_status(instance, timeout=60)
    assert status["runtimeStatus"] == "Completed"
    assert _task_completions(sample, instance) == list(range(17))  # 16 slots + the final read


def test_timer_fires_after_restart(sample):
    instance = sample.start("timer", 3)
    sample.wait_status(instance, {"Running"})
    _crash_and_restart(sample)
    status = sample.wait_status(instance, timeout=30)
    assert status["runtimeStatus"] == "Completed" and status["output"] >= 3


def test_event_raised_just_before_a_crash_is_delivered_after_restart(sample):
    instance = sample.start("wait_event")
    sample.wait_status(instance, {"Running"})
    assert sample.raise_event(instance, "go", "kept").status_code == 202
    _crash_and_restart(sample)
    assert sample.wait_status(instance)["output"] == {"received": '"kept"', "type": "str"}


def test_suspended_instance_stays_suspended_across_restart(sample):
    instance = sample.start("wait_event")
    sample.wait_status(instance, {"Running"})
    sample.control(instance, "suspend")
    sample.wait_status(instance, {"Suspended"})
    _crash_and_restart(sample)
    sample.raise_event(instance, "go", 5)
    time.sleep(1.5)
    assert sample.status(instance)["runtimeStatus"] == "Suspended"
    sample.control(instance, "resume")
    assert sample.wait_status(instance)["output"] == {"received": "5", "type": "str"}
