"""Builds and runs devhost: settings, worker processes, function index, storage, engine, HTTP
server, timers. The app itself runs only in the worker processes (devhost/workers.py)."""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import sys
from collections.abc import MutableMapping

from aiohttp import web

from devhost.config import ConfigError, HostConfig, Options, prepare_environment, resolve_setting_refs
from devhost.discovery import FunctionRegistry, FunctionSpec
from devhost.durable.client_binding import client_binding_json
from devhost.durable.engine import Engine
from devhost.durable.management import ManagementApi
from devhost.durable.store import DurableStore
from devhost.http.keys import Keys
from devhost.http.server import HttpFront, build_route_table
from devhost.invoker import Invoker
from devhost.timers import Schedule, TimerRunner, open_timer_table
from devhost.workers import WorkerPool

log = logging.getLogger("devhost")

__all__ = ["Options", "serve"]


async def _close_sdk_client_session() -> None:
    """The SDK's durable client keeps one aiohttp session per process; close it on shutdown, as
    the Python worker's process exit would (the SDK offers no public hook). Only when something
    in this process used it: the app's functions run in the workers, which close their own."""
    http_utils = sys.modules.get("azure.durable_functions.models.utils.http_utils")
    close = getattr(http_utils, "_close_session", None)
    if close is not None:
        await close()


def registry_from_index(functions: list[dict]) -> FunctionRegistry:
    """The function index a worker sent (devhost never imports the app itself)."""
    return FunctionRegistry([FunctionSpec(name=f["name"], kind=f["kind"], trigger=f["trigger"],
                                          bindings=f["bindings"], user_function=None,
                                          client_param=f["client_param"], aliases=list(f["aliases"]))
                             for f in functions])


async def serve(options: Options, environ: MutableMapping[str, str], *, config: HostConfig | None = None,
                workers: WorkerPool | None = None) -> None:
    """Run until SIGINT/SIGTERM. `python -m devhost` passes the config and the workers it has
    already started, so the app's import in the workers overlaps this process's own imports."""
    if config is None:
        config = prepare_environment(options.app_dir, options.settings_file, environ)
    own_workers = workers is None
    if workers is None:
        workers = WorkerPool.for_host(options, config, environ)
        await workers.start()
    try:
        await _serve(options, environ, config, workers)
    finally:
        if own_workers:
            await workers.stop()


async def _serve(options: Options, environ, config: HostConfig, workers: WorkerPool) -> None:
    store = DurableStore(config.storage_connection, config.hub_name)
    opening = asyncio.create_task(store.open())  # while the workers import the app
    try:
        index = await workers.wait_ready()  # an app that cannot be indexed: refuse first
        await opening
    except BaseException:
        opening.cancel()
        await asyncio.gather(opening, return_exceptions=True)
        await store.close()
        raise
    registry = registry_from_index(index)
    routes = build_route_table(config.route_prefix, registry.of_kind("http"))
    keys = Keys.from_settings(options.require_keys, environ)
    timers_specs = registry.of_kind("timer")
    try:
        schedules = {s.name: Schedule(resolve_setting_refs(s.trigger["schedule"], environ))
                     for s in timers_specs}
    except (ConfigError, ValueError) as exc:  # a bad schedule, or one naming a missing setting
        await store.close()
        raise ConfigError(str(exc)) from None

    base_url = f"http://{options.host}:{options.port}"
    rpc_token = secrets.token_urlsafe(16)

    def client_json() -> str:
        return client_binding_json(base_url, config.hub_name, keys.master_key, rpc_token)

    engine = Engine(store, registry, max_activities=config.max_concurrent_activities,
                    max_orchestrators=config.max_concurrent_orchestrators, client_json=client_json,
                    workers=workers)

    invoker = Invoker(workers)
    front = HttpFront(routes=routes, invoker=invoker, keys=keys,
                      management=ManagementApi(engine, config.hub_name, keys.master_key),
                      rpc_token=rpc_token, client_json=client_json)
    runner = web.AppRunner(front.application(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, options.host, options.port).start()
    await engine.start()
    timer_table = await open_timer_table(config.storage_connection, config.hub_name) if timers_specs else None
    timer_tasks = [asyncio.create_task(
        TimerRunner(s, schedules[s.name], invoker, timer_table, client_json).run()) for s in timers_specs]

    for spec in registry.functions:
        detail = ""
        if spec.kind == "http":
            path = "/".join(p for p in (config.route_prefix, spec.trigger.get("route") or spec.name) if p)
            detail = f" [{','.join(spec.trigger.get('methods') or ['*'])}] {base_url}/{path}"
        elif spec.kind == "timer":
            detail = f" ({spec.trigger['schedule']})"
        log.info("Function %s: %s%s", spec.kind, spec.name, detail)
    if keys.required:
        # Printed once so a developer can call the app; never logged per request.
        print(f"devhost keys: function={keys.function_key} master={keys.master_key}", flush=True)
    log.info("App runs in %d worker process(es): pids %s (devhost: %d)", workers.count,
             ", ".join(str(p) for p in workers.pids), os.getpid())
    print(f"devhost listening on {base_url} (task hub {config.hub_name})", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("devhost stopping")
    for task in timer_tasks:
        task.cancel()
    await runner.cleanup()
    await _close_sdk_client_session()
    await engine.stop()
    await store.close()
    if timer_table is not None:
        await timer_table.close()
