"""The SDK's history timestamps are parsed once per distinct string, with the same results."""
from __future__ import annotations

import importlib
from datetime import datetime, timezone

from azure.durable_functions.models.history import HistoryEvent, HistoryEventType
from dateutil.parser import parse as dateutil_parse

from orchestrators import history_timestamps


def test_importing_the_orchestrations_puts_the_cache_in_front_of_the_sdks_parser():
    import orchestrators.extraction  # noqa: F401  (the app's import path)
    module = importlib.import_module(history_timestamps.HISTORY_EVENT_MODULE)
    assert module.dt_parse.cache_info().maxsize == history_timestamps.CACHED_TIMESTAMPS
    assert history_timestamps.install() and module.dt_parse.__wrapped__ is dateutil_parse  # wrapped once


def test_history_events_get_the_timestamps_dateutil_gives_and_repeats_are_not_parsed_again():
    history_timestamps.install()
    module = importlib.import_module(history_timestamps.HISTORY_EVENT_MODULE)
    stamps = ["2026-11-27T23:59:58.1234567Z", "2026-11-27T23:59:59Z", "2026-11-28T00:00:00.5+01:00"]
    before = module.dt_parse.cache_info()
    for _ in range(3):  # three replays of the same history
        events = [HistoryEvent(EventType=HistoryEventType.TASK_COMPLETED, EventId=i, IsPlayed=True, Timestamp=s)
                  for i, s in enumerate(stamps)]
        assert [e.timestamp for e in events] == [dateutil_parse(s) for s in stamps]
    after = module.dt_parse.cache_info()
    assert after.misses - before.misses <= len(stamps) and after.hits - before.hits >= 2 * len(stamps)
    assert events[1].timestamp == datetime(2026, 11, 27, 23, 59, 59, tzinfo=timezone.utc)
