"""Builds and runs devhost: settings, function index, storage, engine, HTTP server, timers."""
from __future__ import annotations

import asyncio
import logging
import secrets
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from devhost.config import ConfigError, HostConfig, prepare_environment, resolve_setting_refs
from devhost.discovery import FunctionRegistry, index_functions, load_app
from devhost.durable.client_binding import client_binding_json
from devhost.durable.engine import Engine
from devhost.durable.management import ManagementApi
from devhost.durable.store import DurableStore
from devhost.http.keys import Keys
from devhost.http.server import HttpFront, build_route_table
from devhost.invoker import Invoker
from devhost.timers import Schedule, TimerRunner, open_timer_table

log = logging.getLogger("devhost")


async def _close_sdk_client_session() -> None:
    """The SDK's durable client keeps one aiohttp session per process; close it on shutdown, as
    the Python worker's process exit would (the SDK offers no public hook)."""
    from azure.durable_functions.models.utils import http_utils
    close = getattr(http_utils, "_close_session", None)
    if close is not None:
        await close()


@dataclass
class Options:
    app_dir: Path
    port: int
    settings_file: Path | None
    require_keys: bool
    host: str = "127.0.0.1"


async def serve(options: Options, environ) -> None:
    config: HostConfig = prepare_environment(options.app_dir, options.settings_file, environ)
    registry = FunctionRegistry(index_functions(load_app(options.app_dir)))
    routes = build_route_table(config.route_prefix, registry.of_kind("http"))
    keys = Keys.from_settings(options.require_keys, environ)
    timers_specs = registry.of_kind("timer")
    try:
        schedules = {s.name: Schedule(resolve_setting_refs(s.trigger["schedule"], environ))
                     for s in timers_specs}
    except ValueError as exc:
        raise ConfigError(str(exc)) from None

    store = DurableStore(config.storage_connection, config.hub_name)
    await store.open()
    base_url = f"http://{options.host}:{options.port}"
    rpc_token = secrets.token_urlsafe(16)

    def client_json() -> str:
        return client_binding_json(base_url, config.hub_name, keys.master_key, rpc_token)

    engine = Engine(store, registry, max_activities=config.max_concurrent_activities,
                    max_orchestrators=config.max_concurrent_orchestrators, client_json=client_json)

    invoker = Invoker(ThreadPoolExecutor(32, thread_name_prefix="http"))
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
