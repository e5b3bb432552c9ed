"""Calls user functions the way the Python worker does: arguments by binding name, converters
from azure.functions (so activities see the same decoded input as in Azure), sync functions on
a thread pool and async ones on the event loop, and a `context` argument when one is declared.
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from devhost.discovery import FunctionSpec

log = logging.getLogger("devhost")


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


class Invoker:
    def __init__(self, pool: ThreadPoolExecutor):
        self.pool = pool

    async def invoke(self, spec: FunctionSpec, arguments: dict[str, Any], *,
                     pool: ThreadPoolExecutor | None = None, label: str = "") -> Any:
        """Run one invocation and log it like `func start`: name, id, duration, outcome."""
        invocation_id = str(uuid.uuid4())
        fn = spec.user_function
        params = inspect.signature(fn).parameters
        kwargs = {k: v for k, v in arguments.items() if k in params}
        if "context" in params and "context" not in kwargs:
            kwargs["context"] = InvocationContext(spec, invocation_id)
        started = time.monotonic()
        outcome = "Succeeded"
        try:
            if inspect.iscoroutinefunction(fn):
                return await fn(**kwargs)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(pool or self.pool, functools.partial(fn, **kwargs))
        except BaseException:
            outcome = "Failed"
            raise
        finally:
            ms = (time.monotonic() - started) * 1000
            log.info("Executed 'Functions.%s' (%s, Id=%s%s, Duration=%.0fms)",
                     spec.name, outcome, invocation_id, f", {label}" if label else "", ms)
