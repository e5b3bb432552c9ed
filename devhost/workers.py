"""Worker processes: the app runs in `--workers N` processes, never in devhost's own.

Each worker is one Azure instance's Python worker (devhost/README.md, "Process model"): it imports
function_app.py on its own (`python -m devhost.worker_process`, a fresh interpreter), indexes it,
and runs invocations, sync functions on its thread pool and async ones on its event loop. This
module is the host side: it starts the workers, talks to each over a socket pair (length-prefixed
pickles, between devhost's own processes only), relays their output line by line to devhost's
stdout, restarts a worker that dies and fails what was in flight on it with `WorkerLost`.

Which worker runs what:
- activities: the ready worker with the fewest activities in flight, the lowest-numbered on ties,
  among those under `maxConcurrentActivityFunctions` (a limit per worker, as per instance in Azure);
- orchestrator replays: the worker owning the instance's partition (FNV-1a of the instance id
  modulo `partitionCount`, partition p on worker p mod N), at most `maxConcurrentOrchestratorFunctions`
  at a time per worker;
- HTTP and timer functions: round-robin over the ready workers.

Kept light (no azure or aiohttp imports) so devhost can start the workers before it imports
anything heavy: the app's import in the workers overlaps devhost's own start-up.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import pickle
import socket
import struct
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Mapping

from devhost.config import ConfigError

log = logging.getLogger("devhost")

_HEADER = struct.Struct(">I")
RESTART_BACKOFF_S = (0.2, 1, 2, 5, 10)   # a worker that keeps dying is restarted ever more slowly
STOP_GRACE_S = 5


# --- framing (both sides) -------------------------------------------------------------------
def frame(message: dict[str, Any]) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """The next message, or None at end of stream."""
    try:
        header = await reader.readexactly(_HEADER.size)
        return pickle.loads(await reader.readexactly(_HEADER.unpack(header)[0]))
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


def partition_of(instance_id: str, partition_count: int) -> int:
    """FNV-1a (32 bit) of the instance id modulo the partition count, as the Azure Storage
    backend places instances on control-queue partitions."""
    h = 0x811C9DC5
    for byte in instance_id.encode("utf-8"):
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h % partition_count


# --- outcomes of a remote invocation ----------------------------------------------------------
class FunctionFailed(Exception):
    """The function raised in its worker: the exception's type name, message and traceback."""

    def __init__(self, type_name: str, message: str, trace: str):
        super().__init__(message)
        self.type_name = type_name
        self.trace = trace


class FunctionTimedOut(FunctionFailed):
    """The invocation ran past host.json's functionTimeout: the host failed it and recycled its worker."""


class WorkerLost(Exception):
    """The worker process died (crash, kill -9) while the invocation ran: it did not complete."""


# --- one worker -------------------------------------------------------------------------------
class Worker:
    def __init__(self, pool: "WorkerPool", index: int):
        self.pool = pool
        self.index = index                     # 1-based, as printed
        self.process: asyncio.subprocess.Process | None = None
        self.pid: int | None = None
        self.ready = asyncio.Event()
        self.activities = 0                    # activities in flight on this worker
        self.replay_slots = asyncio.Semaphore(pool.max_orchestrators)
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future] = {}
        self._first_start: asyncio.Future = asyncio.get_running_loop().create_future()
        self._tasks: set[asyncio.Task] = set()
        self._started_at = 0.0
        self._quick_deaths = 0
        self.threads: int | None = None

    def __repr__(self) -> str:
        return f"worker {self.index} (pid {self.pid})"

    async def spawn(self) -> None:
        parent, child = socket.socketpair()
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "devhost.worker_process", "--fd", str(child.fileno()),
                "--index", str(self.index), "--app", str(self.pool.app_dir),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, pass_fds=(child.fileno(),),
                env=self.pool.environ, limit=1 << 20)
        finally:
            child.close()
        self.pid = self.process.pid
        self._started_at = time.monotonic()
        reader, self._writer = await asyncio.open_connection(sock=parent, limit=1 << 20)
        for coro in (self._read(reader), self._relay(self.process.stdout),
                     self._watch(self.process)):
            task = asyncio.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def request(self, message: dict[str, Any]) -> Any:
        """Send one request and wait for its answer; FunctionFailed or WorkerLost otherwise."""
        await self.ready.wait()
        writer = self._writer
        request_id = next(self.pool._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            writer.write(frame({**message, "id": request_id}))
            try:
                await writer.drain()
            except ConnectionError:
                pass  # the process is dying: _watch fails the future with WorkerLost
            return await future
        finally:
            self._pending.pop(request_id, None)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while (message := await read_frame(reader)) is not None:
            op = message.get("op")
            if op == "ready":
                self.threads = message["threads"]
                log.info("%r ready: app imported in %.0f ms, sync thread pool of %d threads (%s)",
                         self, message["import_ms"], message["threads"], message["threads_source"])
                if not self._first_start.done():
                    self._first_start.set_result(message["functions"])
                self.ready.set()
                self.pool._changed.set()
            elif op == "failed":
                if not self._first_start.done():
                    self._first_start.set_exception(ConfigError(message["message"]))
                else:
                    log.error("%r cannot start again: %s", self, message["message"])
            else:
                future = self._pending.get(message["id"])
                if future is None or future.done():
                    continue
                if message["ok"]:
                    future.set_result(message["value"])
                else:
                    future.set_exception(FunctionFailed(message["type"], message["message"],
                                                        message["trace"]))

    async def _relay(self, stream: asyncio.StreamReader) -> None:
        """Whole lines from the worker's stdout/stderr to devhost's stdout: one writer, so lines
        of different processes never interleave mid-line."""
        while True:
            try:
                line = await stream.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                if exc.partial:
                    _write_line(exc.partial + b"\n")
                return
            except asyncio.LimitOverrunError as exc:
                line = await stream.read(exc.consumed)
            _write_line(line)

    async def _watch(self, process) -> None:
        code = await process.wait()
        if process is not self.process:
            return
        self.ready.clear()
        lost = [f for f in self._pending.values() if not f.done()]
        for future in lost:
            future.set_exception(WorkerLost(f"worker {self.index} (pid {process.pid}) exited with code {code}"))
        if self._writer is not None:
            self._writer.close()
        if self.pool.stopping:
            return
        if not self._first_start.done():
            self._first_start.set_exception(ConfigError(
                f"worker {self.index} exited with code {code} while importing the app"))
            return
        if self._first_start.exception() is not None:
            return  # it never started: devhost is refusing to start
        # At once after a first crash; ever more slowly while it keeps dying within 10 s.
        self._quick_deaths = self._quick_deaths + 1 if time.monotonic() - self._started_at < 10 else 0
        delay = RESTART_BACKOFF_S[min(max(self._quick_deaths - 1, 0), len(RESTART_BACKOFF_S) - 1)]
        log.warning("%r exited with code %s (%d invocation(s) in flight); restarting in %.1fs",
                    self, code, len(lost), delay)
        while True:
            await asyncio.sleep(delay)
            if self.pool.stopping:
                return
            try:
                await self.spawn()
                return
            except Exception:
                log.exception("%r cannot be started again; retrying", self)
                delay = RESTART_BACKOFF_S[-1]

    def recycle(self) -> None:
        """Kill the worker process, as the Functions host does after a function timeout: what
        was in flight on it fails with WorkerLost, and _watch starts it again."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()

    async def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.returncode is None and self._writer is not None:
            try:
                self._writer.write(frame({"op": "stop"}))
                await self._writer.drain()
            except (ConnectionError, RuntimeError):
                pass
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_S)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
        if self._tasks:  # let the relay write what the worker printed last
            await asyncio.wait(list(self._tasks), timeout=1)
        for task in list(self._tasks):
            task.cancel()


def _write_line(line: bytes) -> None:
    out = sys.stdout
    try:
        out.write(line.decode("utf-8", "replace"))
        out.flush()
    except (OSError, ValueError):
        pass


# --- the pool ---------------------------------------------------------------------------------
class WorkerPool:
    def __init__(self, app_dir: Path, count: int, environ: Mapping[str, str], *,
                 max_activities: int, max_orchestrators: int, partition_count: int = 4,
                 function_timeout: float | None = None):
        if count < 1:
            raise ValueError("at least one worker is needed")
        self.app_dir = app_dir
        self.count = count
        # The app sees the settings, not devhost's own variables (its keys): Azure's workers
        # do not get the host's keys either.
        self.environ = {k: v for k, v in environ.items() if not k.startswith("DEVHOST_")}
        self.max_activities = max_activities
        self.max_orchestrators = max_orchestrators
        self.partition_count = partition_count
        self.function_timeout = function_timeout  # seconds an invocation may run (None: no limit)
        self.stopping = False
        self.workers: list[Worker] = []
        self._ids = itertools.count(1)
        self._round_robin = itertools.count()
        self._changed = asyncio.Event()   # set when a slot frees or a worker becomes ready

    @classmethod
    def for_host(cls, options, config, environ: Mapping[str, str]) -> "WorkerPool":
        """`options.workers` workers with host.json's limits (devhost.config Options, HostConfig)."""
        return cls(options.app_dir, options.workers, environ,
                   max_activities=config.max_concurrent_activities,
                   max_orchestrators=config.max_concurrent_orchestrators,
                   partition_count=config.partition_count, function_timeout=config.function_timeout)

    async def start(self) -> None:
        """Start every worker; they import the app while devhost goes on starting."""
        self.workers = [Worker(self, i + 1) for i in range(self.count)]
        await asyncio.gather(*(w.spawn() for w in self.workers))

    async def wait_ready(self) -> list[dict[str, Any]]:
        """The app's function index, once every worker has imported the app; ConfigError when
        the app cannot be indexed (the message names the function and binding)."""
        results = await asyncio.gather(*(w._first_start for w in self.workers), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results[0]

    @property
    def pids(self) -> list[int | None]:
        return [w.pid for w in self.workers]

    # --- choosing a worker ----------------------------------------------------------------
    async def _wait_change(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    @asynccontextmanager
    async def activity_slot(self) -> AsyncIterator[Worker]:
        """A worker with a free activity slot (the least busy; the lowest-numbered on ties),
        holding that slot until the block ends."""
        while True:
            free = [w for w in self.workers if w.ready.is_set() and w.activities < self.max_activities]
            if free:
                break
            await self._wait_change()
        worker = min(free, key=lambda w: w.activities)
        worker.activities += 1
        try:
            yield worker
        finally:
            worker.activities -= 1
            self._changed.set()

    async def next_worker(self) -> Worker:
        """Round-robin over the ready workers (HTTP and timer functions)."""
        while True:
            start = next(self._round_robin)
            for k in range(self.count):
                worker = self.workers[(start + k) % self.count]
                if worker.ready.is_set():
                    return worker
            await self._wait_change()

    def partition_owner(self, instance_id: str) -> Worker:
        return self.workers[partition_of(instance_id, self.partition_count) % self.count]

    # --- requests -------------------------------------------------------------------------
    async def replay(self, orchestrator: str, *, instance_id: str, input_text: str | None,
                     history: list[dict[str, Any]], parent_instance_id: str | None):
        """One replay (pure: history in, ReplayResult out) on the worker owning the instance's
        partition. A worker lost mid-replay is waited for and the replay is run again."""
        message = {"op": "replay", "function": orchestrator, "instance_id": instance_id,
                   "input": input_text, "history": history, "parent": parent_instance_id}
        for attempt in itertools.count():
            worker = self.partition_owner(instance_id)
            try:
                async with worker.replay_slots:
                    return await worker.request(message)
            except WorkerLost as exc:
                delay = RESTART_BACKOFF_S[min(attempt, len(RESTART_BACKOFF_S) - 1)]
                log.warning("replay of instance %s did not complete (%s); running it again", instance_id, exc)
                await asyncio.sleep(delay)

    async def stop(self) -> None:
        self.stopping = True
        await asyncio.gather(*(w.stop() for w in self.workers), return_exceptions=True)
