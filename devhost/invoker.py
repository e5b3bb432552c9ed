"""Calls user functions the way the Python worker does, in two halves.

In a worker process (devhost/worker_process.py), `call_user_function`: arguments by binding name,
converters from azure.functions (so activities see the same decoded input as in Azure), sync
functions on the worker's thread pool and async ones on its event loop, and a `context` argument
when one is declared.

In devhost's process, `Invoker`: sends one invocation to a worker (devhost/workers.py) and logs it
like `func start`: `Executed 'Functions.NAME' (Succeeded, Id=..., Duration=12ms)`.
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
import uuid
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from devhost.discovery import FunctionSpec
from devhost.workers import FunctionFailed, FunctionTimedOut, WorkerLost

if TYPE_CHECKING:
    from devhost.workers import Worker, WorkerPool

log = logging.getLogger("devhost")
TIMEOUT_GRACE_S = 2.0  # how long the host still waits for a function past its timeout (TimeoutAttribute's default)


class InvocationContext:
    """What `func.Context` offers a function that declares a `context` parameter."""

    def __init__(self, spec: FunctionSpec, invocation_id: str):
        self.invocation_id = invocation_id
        self.function_name = spec.name
        self.function_directory = ""
        self.trace_context = None
        self.retry_context = None
        self.thread_local_storage = None


def decode_activity_input(text: str | None) -> Any:
    return ActivityTriggerConverter.decode(meta.Datum(text, "string"), trigger_metadata=None)


def encode_activity_output(value: Any) -> str:
    return ActivityTriggerConverter.encode(value, expected_type=None).value


# --- in a worker process ----------------------------------------------------------------------
async def call_user_function(spec: FunctionSpec, arguments: dict[str, Any], invocation_id: str,
                             pool: Executor) -> Any:
    """One call: async functions awaited on this loop, sync ones on the worker's thread pool."""
    fn = spec.user_function
    params = inspect.signature(fn).parameters
    kwargs = {k: v for k, v in arguments.items() if k in params}
    if "context" in params and "context" not in kwargs:
        kwargs["context"] = InvocationContext(spec, invocation_id)
    if inspect.iscoroutinefunction(fn):
        return await fn(**kwargs)
    return await asyncio.get_running_loop().run_in_executor(pool, functools.partial(fn, **kwargs))


# --- in devhost's process ---------------------------------------------------------------------
def failure_text(exc: BaseException) -> str:
    """`Type: message` of a function's exception, as Azure reports it (a timeout: the host's message)."""
    if isinstance(exc, FunctionTimedOut):
        return str(exc)
    name = exc.type_name if isinstance(exc, FunctionFailed) else type(exc).__name__
    return f"{name}: {exc}"


def _hms(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


async def _within_function_timeout(worker: "Worker", request: Any, *, timeout: float | None, function: str,
                                   invocation_id: str) -> Any:
    """Wait for an invocation as the Functions host does with functionTimeout (azure-webjobs-sdk
    FunctionExecutor, OnFunctionTimeout / TryHandleTimeoutAsync; the script host's
    OnTimeoutExceptionAsync): past the timeout it logs and waits TIMEOUT_GRACE_S more for the
    function to end; then the invocation fails with the host's message and its worker process is
    recycled (what else ran in it fails with WorkerLost: activities run again)."""
    task = asyncio.ensure_future(request)
    if timeout is None:
        return await task
    try:
        return await asyncio.wait_for(asyncio.shield(task), timeout)
    except asyncio.TimeoutError:
        log.error("Timeout value of %s exceeded by function 'Functions.%s' (Id: '%s'). Initiating cancellation.",
                  _hms(timeout), function, invocation_id)
    try:
        return await asyncio.wait_for(asyncio.shield(task), TIMEOUT_GRACE_S)
    except asyncio.TimeoutError:
        pass
    log.error("A function timeout has occurred. Restarting worker process executing invocationId '%s'.",
              invocation_id)
    task.add_done_callback(lambda done: done.cancelled() or done.exception())  # WorkerLost: nobody waits
    worker.recycle()
    raise FunctionTimedOut("FunctionTimeoutException",
                           f"Timeout value of {_hms(timeout)} was exceeded by function: Functions.{function}", "")


def log_failure(message: str, *args: Any, exc: BaseException, level: int = logging.ERROR) -> None:
    """Log a failed invocation with its traceback (the worker's, when it failed there)."""
    if isinstance(exc, FunctionFailed):
        log.log(level, message + "\n%s", *args, exc.trace.rstrip())
    elif isinstance(exc, WorkerLost):
        log.log(level, message + ": %s", *args, exc)
    else:
        log.log(level, message, *args, exc_info=exc)


class Invoker:
    def __init__(self, workers: "WorkerPool"):
        self.workers = workers

    async def invoke(self, spec: FunctionSpec, trigger: dict[str, Any], *, client: str | None = None,
                     worker: "Worker | None" = None, label: str = "") -> Any:
        """Run one invocation in a worker (round-robin unless one is given) and log it. The
        trigger's data crosses as plain values: the activity input text, an HTTP request as a
        dict, a timer's past_due. Raises FunctionFailed, or WorkerLost when the worker died."""
        invocation_id = str(uuid.uuid4())
        started = time.monotonic()
        outcome = "Succeeded"
        try:
            worker = worker or await self.workers.next_worker()
            request = worker.request({"op": "call", "function": spec.name, "kind": spec.kind,
                                      "trigger": trigger, "client": client, "invocation_id": invocation_id})
            return await _within_function_timeout(worker, request, timeout=self.workers.function_timeout,
                                                  function=spec.name, invocation_id=invocation_id)
        except BaseException:
            outcome = "Failed"
            raise
        finally:
            ms = (time.monotonic() - started) * 1000
            log.info("Executed 'Functions.%s' (%s, Id=%s%s, Duration=%.0fms)",
                     spec.name, outcome, invocation_id, f", {label}" if label else "", ms)


__all__ = ["InvocationContext", "Invoker", "FunctionFailed", "WorkerLost", "call_user_function",
           "decode_activity_input", "encode_activity_output", "failure_text", "log_failure"]
