"""One worker process, as the Azure Functions Python worker is one per instance (`python -m
devhost.worker_process --fd FD --index I --app DIR`, started by devhost/workers.py).

It imports function_app.py fresh (its own module state: caches, rate limiters, counters are not
shared with other workers), indexes it, tells devhost the index, then runs what devhost sends:
function invocations and orchestrator replays. Sync functions (orchestrators' replays included:
the SDK's orchestrator function is sync) run on one ThreadPoolExecutor sized as the Python worker
sizes its pool, async functions on this process's one event loop.

It ignores SIGINT and SIGTERM (Ctrl-C and `kill` reach the whole process group; devhost stops
its workers itself) and exits when devhost says stop or its socket closes (devhost died).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping

from devhost.workers import frame, read_frame

log = logging.getLogger("devhost.worker")
THREAD_COUNT_SETTING = "PYTHON_THREADPOOL_THREAD_COUNT"


def sync_pool_size(environ: Mapping[str, str]) -> tuple[int | None, str]:
    """max_workers for the sync thread pool, as azure-functions-python-worker's
    `Dispatcher._get_sync_tp_max_workers` decides it: PYTHON_THREADPOOL_THREAD_COUNT when it is an
    integer >= 1, else (Python 3.9 and later) None: ThreadPoolExecutor's own default,
    min(32, cpu count + 4). Returns the value and where it came from."""
    raw = environ.get(THREAD_COUNT_SETTING)
    if raw:
        try:
            value = int(raw)
        except ValueError:
            log.warning("%s must be an integer", THREAD_COUNT_SETTING)
        else:
            if value >= 1:
                return value, f"{THREAD_COUNT_SETTING}={value}"
            log.warning("%s must be set to a value between 1 and sys.maxint. Reverting to default "
                        "value for max_workers", THREAD_COUNT_SETTING)
    return None, "the Python worker's default for Python 3.9+: min(32, cpu count + 4)"


class WorkerRuntime:
    def __init__(self, app_dir: Path, index: int):
        self.app_dir = app_dir
        self.index = index
        self.specs: dict[tuple[str, str], Any] = {}
        max_workers, self.threads_source = sync_pool_size(os.environ)
        self.pool = ThreadPoolExecutor(max_workers, thread_name_prefix="sync")
        self.writer: asyncio.StreamWriter | None = None
        self.tasks: set[asyncio.Task] = set()

    def send(self, message: dict[str, Any]) -> None:
        self.writer.write(frame(message))

    def load(self) -> dict[str, Any]:
        """Import and index the app; the `ready` or `failed` message for devhost."""
        from devhost.config import ConfigError
        from devhost.discovery import index_functions, load_app
        started = time.monotonic()
        try:
            specs = index_functions(load_app(self.app_dir))
        except ConfigError as exc:
            return {"op": "failed", "message": str(exc)}
        except BaseException as exc:  # the app's own import failed: show its trace
            traceback.print_exc()
            sys.stdout.flush()
            return {"op": "failed", "message": f"{self.app_dir / 'function_app.py'} failed to import: "
                                               f"{type(exc).__name__}: {exc}"}
        for spec in specs:
            self.specs[(spec.kind, spec.name)] = spec
        functions = [{"name": s.name, "kind": s.kind, "trigger": s.trigger, "bindings": s.bindings,
                      "client_param": s.client_param, "aliases": s.aliases} for s in specs]
        return {"op": "ready", "pid": os.getpid(), "functions": functions,
                "import_ms": (time.monotonic() - started) * 1000,
                "threads": self.pool._max_workers, "threads_source": self.threads_source}

    async def run(self, fd: int) -> None:
        sock = socket.socket(fileno=fd)
        reader, self.writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
        hello = self.load()
        self.send(hello)
        await self.writer.drain()
        if hello["op"] == "failed":
            return
        while (message := await read_frame(reader)) is not None and message.get("op") != "stop":
            task = asyncio.create_task(self.handle(message))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def handle(self, message: dict[str, Any]) -> None:
        try:
            if message["op"] == "replay":
                value = await self.replay(message)
            else:
                value = await self.call(message)
            reply = {"id": message["id"], "ok": True, "value": value}
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # SystemExit from a function fails the invocation only
            reply = {"id": message["id"], "ok": False, "type": type(exc).__name__, "message": str(exc),
                     "trace": "".join(traceback.format_exception(exc))}
        try:
            self.send(reply)
        except Exception as exc:  # e.g. a value that cannot be pickled: report that instead
            self.send({"id": message["id"], "ok": False, "type": type(exc).__name__, "message": str(exc),
                       "trace": "".join(traceback.format_exception(exc))})

    async def replay(self, message: dict[str, Any]) -> Any:
        from devhost.durable.replay import replay
        spec = self.specs[("orchestrator", message["function"])]
        return await asyncio.get_running_loop().run_in_executor(self.pool, lambda: replay(
            spec.user_function, instance_id=message["instance_id"], input_text=message["input"],
            history=message["history"], parent_instance_id=message["parent"]))

    async def call(self, message: dict[str, Any]) -> Any:
        from devhost.invoker import call_user_function, decode_activity_input, encode_activity_output
        kind, trigger = message["kind"], message["trigger"]
        spec = self.specs[(kind, message["function"])]
        if kind == "activity":
            arguments = {spec.trigger_param: decode_activity_input(trigger["input"])}
        elif kind == "http":
            from devhost.http.transport import request_from_dict
            arguments = {spec.trigger_param: request_from_dict(trigger)}
        elif kind == "timer":
            from azure.functions.timer import TimerRequest
            arguments = {spec.trigger_param: TimerRequest(past_due=trigger["past_due"])}
        else:
            raise ValueError(f"devhost cannot invoke a function of kind {kind!r}")
        if spec.client_param and message.get("client") is not None:
            arguments[spec.client_param] = message["client"]
        result = await call_user_function(spec, arguments, message["invocation_id"], self.pool)
        if kind == "activity":
            return encode_activity_output(result)
        if kind == "http":
            from devhost.http.transport import result_to_dict
            return result_to_dict(result)
        return None

    async def close(self) -> None:
        """What the Python worker's exit would close: the SDK's shared HTTP session."""
        http_utils = sys.modules.get("azure.durable_functions.models.utils.http_utils")
        close = getattr(http_utils, "_close_session", None)
        if close is not None:
            try:
                await asyncio.wait_for(close(), 2)
            except Exception:
                pass


async def _main(args: argparse.Namespace) -> None:
    runtime = WorkerRuntime(Path(args.app), args.index)
    try:
        await runtime.run(args.fd)
    finally:
        await runtime.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devhost.worker_process")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--app", required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    for noisy in ("azure", "aiohttp.access", "urllib3", "msal"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    code = 0
    try:
        asyncio.run(_main(args))
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # Not a normal exit: it would wait for sync functions still running in the pool's threads.
    os._exit(code)


if __name__ == "__main__":
    main()
