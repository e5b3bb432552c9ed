"""Health of the dependencies the service needs: Table storage, Blob storage, the Durable backend.

Each check is one cheap round trip (a one-entity query, a container property read, a status
read of an instance that does not exist), so the route can be polled every few seconds.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

from mailextract import __version__
from mailextract.settings import Settings, get_settings
from mailextract.storage import account
from mailextract.storage.jobs import TABLE as JOBS_TABLE
from mailextract.storage.mail_blobs import CONTAINER


def _table_probe(settings: Settings) -> None:
    next(iter(account.table(JOBS_TABLE, settings).query_entities("PartitionKey eq 'none'",
                                                                 results_per_page=1)), None)


def _blob_probe(settings: Settings) -> None:
    account.container(CONTAINER, settings).get_container_properties()


async def _timed(check: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    started = time.monotonic()
    try:
        await asyncio.wait_for(check(), timeout=5)
        return {"status": "ok", "latency_ms": round((time.monotonic() - started) * 1000, 1)}
    except Exception as exc:  # any failure of a dependency is what this reports
        reason = str(exc).split("\n")[0][:200] or type(exc).__name__
        return {"status": "error", "error": f"{type(exc).__name__}: {reason}"}


async def check_health(durable_probe: Callable[[], Awaitable[None]],
                       settings: Settings | None = None) -> tuple[bool, dict[str, Any]]:
    settings = settings or get_settings()
    names = ("table_storage", "blob_storage", "durable")
    results = await asyncio.gather(
        _timed(lambda: asyncio.to_thread(_table_probe, settings)),
        _timed(lambda: asyncio.to_thread(_blob_probe, settings)),
        _timed(durable_probe))
    dependencies = dict(zip(names, results))
    failing = [name for name, result in dependencies.items() if result["status"] != "ok"]
    body: dict[str, Any] = {"status": "unavailable" if failing else "ok", "version": __version__}
    if failing:
        body["failing"] = failing
    body["dependencies"] = dependencies
    return not failing, body
