"""devhost's worker processes, the parts that need no process: pool size, partitions, which
worker takes an activity, and the HTTP request/result crossing the process boundary."""
from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import azure.functions as func
import pytest

from devhost.http.transport import request_from_dict, request_to_dict, result_from_dict, result_to_dict
from devhost.worker_process import sync_pool_size
from devhost.workers import WorkerPool, partition_of


def test_pool_size_follows_PYTHON_THREADPOOL_THREAD_COUNT_else_the_executor_default():
    assert sync_pool_size({"PYTHON_THREADPOOL_THREAD_COUNT": "2"})[0] == 2
    # Unset or invalid: None, ThreadPoolExecutor's own default, as the Python worker on 3.9+.
    for env in ({}, {"PYTHON_THREADPOOL_THREAD_COUNT": "0"}, {"PYTHON_THREADPOOL_THREAD_COUNT": "many"}):
        assert sync_pool_size(env)[0] is None
    assert ThreadPoolExecutor(None)._max_workers == min(32, (os.cpu_count() or 1) + 4)


def test_partition_is_stable_and_spreads_instances():
    assert partition_of("abc", 4) == partition_of("abc", 4)
    assert partition_of("", 4) == 0x811C9DC5 % 4  # FNV-1a offset basis: nothing hashed
    assert {partition_of(f"instance-{i}", 4) for i in range(50)} == {0, 1, 2, 3}


class _StubWorker:
    def __init__(self, index: int, ready: bool = True):
        self.index = index
        self.activities = 0
        self.ready = asyncio.Event()
        if ready:
            self.ready.set()


def _pool(count: int, max_activities: int) -> WorkerPool:
    pool = WorkerPool(Path("."), count, {}, max_activities=max_activities, max_orchestrators=1)
    pool.workers = [_StubWorker(i + 1) for i in range(count)]
    return pool


def test_activities_go_to_the_least_busy_worker_and_wait_for_a_free_slot():
    async def scenario():
        pool = _pool(2, max_activities=2)
        held = []
        for _ in range(4):  # a burst spreads: 1, 2, 1, 2
            slot = pool.activity_slot()
            held.append((slot, await slot.__aenter__()))
        assert [w.index for _, w in held] == [1, 2, 1, 2]
        waiting = asyncio.create_task(pool.activity_slot().__aenter__())
        await asyncio.sleep(0.01)
        assert not waiting.done()  # every slot of every worker is taken
        slot, worker = held[1]
        await slot.__aexit__(None, None, None)
        assert (await asyncio.wait_for(waiting, 1)).index == 2
        # One at a time, with nothing else running: the lowest-numbered worker.
        idle = _pool(3, max_activities=2)
        async with idle.activity_slot() as first:
            pass
        async with idle.activity_slot() as second:
            pass
        assert first.index == second.index == 1
    asyncio.run(scenario())


def test_round_robin_skips_workers_that_are_not_ready():
    async def scenario():
        pool = _pool(3, max_activities=1)
        pool.workers[1].ready.clear()
        picks = [(await pool.next_worker()).index for _ in range(4)]
        assert 2 not in picks and set(picks) == {1, 3}
    asyncio.run(scenario())


def test_http_request_and_results_cross_the_process_boundary_unchanged():
    req = func.HttpRequest("PUT", "http://h/api/x?a=1", headers={"X-Test": "v"}, params={"a": "1"},
                           route_params={"id": "7"}, body="é".encode())
    back = request_from_dict(request_to_dict(req))
    assert (back.method, back.url, back.headers.get("x-test"), dict(back.params), dict(back.route_params),
            back.get_body()) == ("PUT", "http://h/api/x?a=1", "v", {"a": "1"}, {"id": "7"}, "é".encode())

    resp = func.HttpResponse("{}", status_code=201, headers={"X-Echo": "yes"}, mimetype="application/json",
                             charset="latin-1")
    again = result_from_dict(result_to_dict(resp))
    assert (again.status_code, dict(again.headers), again.get_body(), again.mimetype, again.charset) == (
        201, {"X-Echo": "yes"}, b"{}", "application/json", "latin-1")
    for plain in ("text", b"bytes", None):
        assert result_from_dict(result_to_dict(plain)) == plain
    with pytest.raises(TypeError, match="an HTTP function returned dict; expected func.HttpResponse"):
        result_from_dict(result_to_dict({"not": "allowed"}))
