"""Memoized parsing of history timestamps for the Durable Functions SDK's replays.

Every episode of an orchestration, azure-functions-durable 1.x rebuilds the whole history it is
given and parses each event's `Timestamp` with dateutil's generic parser (`HistoryEvent.__init__`
calls the module's `dt_parse`), about 30 us a call here. An execution of a long run replays a few
hundred events per episode, so the same strings are parsed again on every page: py-spy put 15 %
of the local runtime's CPU there in a 100,000-message run, and the Python worker pays the same
in Azure. A given string always parses to the same datetime (immutable), so `install()` wraps
that parser in a bounded LRU cache; nothing else of the SDK changes. If a later SDK stops
parsing through that name, `install()` leaves it alone and tests/unit/orchestrators notices.
"""
from __future__ import annotations

import functools
import importlib

HISTORY_EVENT_MODULE = "azure.durable_functions.models.history.HistoryEvent"
CACHED_TIMESTAMPS = 16_384  # a few hundred events per instance, many instances per worker


def install() -> bool:
    """Put the cache in front of the SDK's history timestamp parser (once); whether it is there."""
    module = importlib.import_module(HISTORY_EVENT_MODULE)
    parse = getattr(module, "dt_parse", None)
    if parse is None:
        return False
    if not hasattr(parse, "cache_info"):
        module.dt_parse = functools.lru_cache(maxsize=CACHED_TIMESTAMPS)(parse)
    return True
