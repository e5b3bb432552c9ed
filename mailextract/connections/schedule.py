"""Sync schedules: `every 15 minutes`, `every 2 hours`, `daily`... as an interval in seconds.

Accepted forms (case-insensitive, any spacing): `every N minute(s)`, `every N hour(s)`,
`every N day(s)` with N a whole number from 1, `every minute`, `every hour`, `every day`,
`hourly`, `daily`. The interval must be at least 60 seconds and at most 7 days.

Times are timezone-aware UTC datetimes; records store them as ISO text in the format of
`mailextract.jobs.utcnow_iso` (`2025-01-31T12:00:00.000000Z`), which sorts as it compares.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from mailextract.errors import InvalidRequest

MIN_INTERVAL_SECONDS = 60
MAX_INTERVAL_SECONDS = 7 * 24 * 3600
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_EVERY_N = re.compile(r"every\s+([0-9]+)\s+(minute|hour|day)s?", re.IGNORECASE)
_EVERY_ONE = re.compile(r"every\s+(minute|hour|day)", re.IGNORECASE)
_ADVERBS = {"hourly": 3600, "daily": 86400}
MAX_SCHEDULE_CHARS = 100  # stored as given, and no accepted form needs more
ACCEPTED_FORMS = ("'every N minutes', 'every N hours', 'every N days' (N a whole number from 1), "
                  "'every minute', 'every hour', 'every day', 'hourly' or 'daily'")


def parse_schedule(text: object) -> int:
    """The interval in seconds of a schedule text; InvalidRequest naming the accepted forms."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequest(f"schedule is required and must be one of {ACCEPTED_FORMS}", field="schedule")
    value = text.strip()
    if len(value) > MAX_SCHEDULE_CHARS:
        raise InvalidRequest(f"schedule must be at most {MAX_SCHEDULE_CHARS} characters", field="schedule")
    seconds = None
    if match := _EVERY_N.fullmatch(value):
        seconds = int(match.group(1)) * _UNITS[match.group(2).lower()]
        if int(match.group(1)) < 1:
            raise InvalidRequest(f"schedule {value[:100]!r}: N must be at least 1", field="schedule")
    elif match := _EVERY_ONE.fullmatch(value):
        seconds = _UNITS[match.group(1).lower()]
    elif value.lower() in _ADVERBS:
        seconds = _ADVERBS[value.lower()]
    if seconds is None:
        raise InvalidRequest(f"schedule must be one of {ACCEPTED_FORMS}; got {value[:100]!r}", field="schedule")
    if seconds < MIN_INTERVAL_SECONDS:
        raise InvalidRequest(f"schedule {value[:100]!r} is too frequent: at most every minute", field="schedule")
    if seconds > MAX_INTERVAL_SECONDS:
        raise InvalidRequest(f"schedule {value[:100]!r} is too far apart: at least every 7 days "
                             f"(every 168 hours, every 10080 minutes)", field="schedule")
    return seconds


def next_due(last_sync_at: datetime | str | None, interval_seconds: int, now: datetime) -> datetime:
    """When a connection is next due: `now` if it never synced, else `interval_seconds` after its
    last sync, but never earlier than `now` (an overdue connection is due at once, not in the past).
    Naive datetimes are taken as UTC; ISO text is accepted for `last_sync_at`."""
    now = as_utc(now)
    if last_sync_at is None:
        return now
    last = parse_iso(last_sync_at) if isinstance(last_sync_at, str) else as_utc(last_sync_at)
    return max(last + timedelta(seconds=interval_seconds), now)


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def parse_iso(text: str) -> datetime:
    """A stored ISO 8601 time (`Z` or offset; naive = UTC) as an aware UTC datetime; ValueError if not one."""
    return as_utc(datetime.fromisoformat(re.sub(r"[zZ]$", "+00:00", text.strip())))


def to_iso(value: datetime) -> str:
    """The stored form, the same as `mailextract.jobs.utcnow_iso`."""
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
