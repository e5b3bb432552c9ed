"""`--workers N`: the app runs in N worker processes, as a scaled-out app on N instances.

The suite's devhosts run with two workers (tests/support/devhost_fixtures.py), so these tests
use the `sample` fixture's devhost as it is, and start their own only to change a setting.
"""
from __future__ import annotations

import os
import re
import signal
import threading
import time

import requests

from tests.devhost.conftest import FINISHED, QUIET_TIMER, SAMPLE_APP, SampleClient
from tests.support.devhost_fixtures import wait_for

EXECUTED = re.compile(r"^\[[^\]]+\] INFO devhost: Executed 'Functions\.\w+' "
                      r"\((Succeeded|Failed), Id=[0-9a-f-]{36}(, [^)]*)?, Duration=\d+ms\)$")


def _fan_out(sample: SampleClient, activity: str, count: int, payload=None, timeout: float = 60) -> list:
    instance = sample.start("fan_out_to", {"activity": activity, "count": count, "input": payload})
    status = sample.wait_status(instance, timeout=timeout)
    assert status["runtimeStatus"] == "Completed", status
    return status["output"]


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals running at one instant (an end and a start at one instant don't overlap)."""
    points = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda p: (p[0], p[1]))
    running = peak = 0
    for _, step in points:
        running += step
        peak = max(peak, running)
    return peak


def test_activities_of_one_orchestration_run_in_every_worker_never_in_devhost(sample):
    workers = sample.host.worker_pids()
    assert len(workers) == 2 and sample.host.process.pid not in workers
    pids = {r["pid"] for r in _fan_out(sample, "count_in_process", 20)}
    assert pids == workers
    # Orchestrator replays run in the workers too.
    instance = sample.start("call_once", {"activity": "say_hello", "input": "x"})
    assert sample.wait_status(instance)["output"]["replayed_in"] in workers
    # Each invocation is logged by devhost as before, one whole line each.
    lines = [line for line in sample.host.log_text().splitlines() if "Executed 'Functions.count_in_process'" in line]
    assert len(lines) == 20 and all(EXECUTED.match(line) for line in lines), lines[:3]


def test_module_level_state_is_per_worker_process(sample):
    results = _fan_out(sample, "count_in_process", 20)
    by_pid: dict[int, list[int]] = {}
    for r in results:
        by_pid.setdefault(r["pid"], []).append(r["count"])
    assert len(by_pid) == 2
    # Each process counted only its own calls, from 1: nothing is shared between workers.
    for counts in by_pid.values():
        assert sorted(counts) == list(range(1, len(counts) + 1))


def test_sync_functions_share_a_pool_of_PYTHON_THREADPOOL_THREAD_COUNT_threads_per_worker(devhost_factory):
    # sample_app/host.json allows 4 activities per worker: 8 slots for 6 activities, so only the
    # thread pool (2 per worker) keeps a third one of a worker from running at once.
    host = devhost_factory(SAMPLE_APP, env={**QUIET_TIMER, "PYTHON_THREADPOOL_THREAD_COUNT": "2"})
    results = _fan_out(SampleClient(host), "timed_sleep", 6, 1.0)
    by_pid: dict[int, list[tuple[float, float]]] = {}
    for r in results:
        by_pid.setdefault(r["pid"], []).append((r["start"], r["end"]))
    assert set(by_pid) == host.worker_pids()
    assert {pid: _max_overlap(spans) for pid, spans in by_pid.items()} == {pid: 2 for pid in by_pid}
    assert "sync thread pool of 2 threads (PYTHON_THREADPOOL_THREAD_COUNT=2)" in host.log_text()


def test_without_the_setting_the_pool_has_the_python_workers_default_size(sample):
    # min(32, cpu count + 4) >= 5: three activities of one worker all run at once.
    expected = min(32, (os.cpu_count() or 1) + 4)
    assert f"sync thread pool of {expected} threads" in sample.host.log_text()
    results = _fan_out(sample, "timed_sleep", 6, 1.0)
    by_pid: dict[int, list[tuple[float, float]]] = {}
    for r in results:
        by_pid.setdefault(r["pid"], []).append((r["start"], r["end"]))
    assert sorted(_max_overlap(spans) for spans in by_pid.values()) == [3, 3]


def _wait_finished(sample: SampleClient, instance: str, timeout: float = 30) -> dict:
    """Through devhost's own status webhook: an HTTP function in the worker being killed may 500."""
    def finished():
        body = sample.webhook("GET", f"instances/{instance}").json()
        return body if body["runtimeStatus"] in FINISHED else None
    return wait_for(finished, timeout=timeout, message=f"{instance} to finish")


def test_a_killed_worker_is_restarted_and_its_activity_runs_again(sample, tmp_path):
    marks = tmp_path / "marks.txt"
    instance = sample.start("call_once", {"activity": "marked_sleep",
                                          "input": {"path": str(marks), "seconds": 3}})
    first = int(wait_for(lambda: marks.exists() and marks.read_text().split(),
                         message="the activity to start")[0])
    assert first in sample.host.worker_pids() and first != sample.host.process.pid
    os.kill(first, signal.SIGKILL)

    status = _wait_finished(sample, instance)
    assert status["runtimeStatus"] == "Completed"
    runs = [int(pid) for pid in marks.read_text().split()]
    assert len(runs) == 2 and runs[0] == first
    assert status["output"]["result"] == runs[1] != first  # the re-run's result was stored
    history = sample.webhook("GET", f"instances/{instance}", params={"showHistory": "true"}).json()
    assert [e["EventType"] for e in history["historyEvents"]].count("TaskCompleted") == 1

    # Two workers again, the killed one replaced by a fresh process that takes work.
    workers = wait_for(lambda: (pids := sample.host.worker_pids()) and len(pids) == 2
                       and first not in pids and pids, message="the worker to be restarted")
    wait_for(lambda: {r["pid"] for r in _fan_out(sample, "count_in_process", 10)} == workers,
             timeout=20, interval=0.5, message="both workers to run activities")
    log = sample.host.log_text()
    assert re.search(rf"worker \d \(pid {first}\) exited with code -9 \(\d+ invocation\(s\) in flight\)", log)
    assert "activity marked_sleep of instance" in log and "running it again" in log


def test_http_functions_run_in_the_workers_round_robin(sample):
    pids = [sample.http.get(sample.api("pid")).json()["pid"] for _ in range(6)]
    assert set(pids) == sample.host.worker_pids()
    assert sample.host.process.pid not in pids
    # Round-robin: consecutive requests alternate between the two workers.
    assert all(a != b for a, b in zip(pids, pids[1:]))


def test_one_worker_is_still_a_process_of_its_own(devhost_factory):
    host = devhost_factory(SAMPLE_APP, env=QUIET_TIMER, workers=1)
    (worker,) = host.worker_pids()
    assert worker != host.process.pid
    assert requests.get(host.url("api/pid")).json() == {"pid": worker}
    assert {r["pid"] for r in _fan_out(SampleClient(host), "count_in_process", 6)} == {worker}


def test_a_worker_killed_during_an_http_request_answers_500_and_comes_back(sample):
    before = sample.host.worker_pids()
    answers: list[requests.Response] = []
    call = threading.Thread(target=lambda: answers.append(
        requests.get(sample.api("blocking"), params={"seconds": "5"}, timeout=30)))
    call.start()
    time.sleep(1)
    for pid in before:  # the request runs in one of them: kill both
        os.kill(pid, signal.SIGKILL)
    call.join(30)
    assert answers and answers[0].status_code == 500 and answers[0].content == b""
    after = wait_for(lambda: len(pids := sample.host.worker_pids()) == 2 and not pids & before and pids,
                     message="both workers to be restarted")
    # Both new workers answer once they have imported the app.
    wait_for(lambda: {sample.http.get(sample.api("pid")).json()["pid"] for _ in range(4)} == after,
             message="both new workers to answer")
