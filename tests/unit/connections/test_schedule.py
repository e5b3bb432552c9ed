"""Schedules: the accepted forms, their intervals, the bounds, and when a connection is next due."""
from datetime import datetime, timedelta, timezone

import pytest

from mailextract.connections.schedule import ACCEPTED_FORMS, next_due, parse_iso, parse_schedule, to_iso
from mailextract.errors import InvalidRequest

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, seconds", [
    ("every 15 minutes", 900),
    ("every 1 minute", 60),
    ("every 1 minutes", 60),
    ("every 2 minute", 120),
    ("every minute", 60),
    ("every hour", 3600),
    ("every 3 hours", 10800),
    ("every 1 hour", 3600),
    ("every day", 86400),
    ("every 7 days", 604800),
    ("every 168 hours", 604800),
    ("every 10080 minutes", 604800),
    ("hourly", 3600),
    ("daily", 86400),
    ("EVERY 15 MINUTES", 900),
    ("Every 15 Minutes", 900),
    ("  every   15\tminutes  ", 900),
    ("Hourly", 3600),
    (" DAILY ", 86400),
    ("every 015 minutes", 900),
])
def test_accepted_forms(text, seconds):
    assert parse_schedule(text) == seconds


@pytest.mark.parametrize("text", [
    "every", "every minutes", "every hours", "15 minutes", "every 15", "every 15 mins", "every 1.5 hours",
    "every -5 minutes", "every fifteen minutes", "weekly", "every week", "every 2 weeks", "every 15 seconds",
    "every15minutes", "every 15 minutes please", "hourly daily", "*/15 * * * *", "every ١٥ minutes",
])
def test_other_texts_are_refused_naming_the_accepted_forms(text):
    with pytest.raises(InvalidRequest) as info:
        parse_schedule(text)
    assert str(info.value) == f"schedule must be one of {ACCEPTED_FORMS}; got {text.strip()!r}"
    assert info.value.field == "schedule"


def test_accepted_forms_message():
    assert ACCEPTED_FORMS == ("'every N minutes', 'every N hours', 'every N days' (N a whole number from 1), "
                              "'every minute', 'every hour', 'every day', 'hourly' or 'daily'")


@pytest.mark.parametrize("value", [None, "", "   ", 15, ["every hour"]])
def test_missing_schedule(value):
    with pytest.raises(InvalidRequest) as info:
        parse_schedule(value)
    assert str(info.value) == f"schedule is required and must be one of {ACCEPTED_FORMS}"


@pytest.mark.parametrize("text", ["every 0 minutes", "every 0 days", "every 00 hours"])
def test_zero_is_refused(text):
    with pytest.raises(InvalidRequest) as info:
        parse_schedule(text)
    assert str(info.value) == f"schedule {text!r}: N must be at least 1"


@pytest.mark.parametrize("text", ["every 8 days", "every 169 hours", "every 10081 minutes",
                                  "every 99999999999999999999 days"])
def test_longer_than_seven_days_is_refused(text):
    with pytest.raises(InvalidRequest) as info:
        parse_schedule(text)
    assert str(info.value) == (f"schedule {text!r} is too far apart: at least every 7 days "
                               "(every 168 hours, every 10080 minutes)")


def test_never_synced_is_due_now():
    assert next_due(None, 900, NOW) == NOW


def test_due_one_interval_after_the_last_sync():
    last = NOW - timedelta(minutes=5)
    assert next_due(last, 900, NOW) == NOW + timedelta(minutes=10)


def test_overdue_is_due_now_not_in_the_past():
    assert next_due(NOW - timedelta(days=3), 3600, NOW) == NOW


def test_exactly_due():
    assert next_due(NOW - timedelta(seconds=900), 900, NOW) == NOW


def test_naive_times_are_utc_and_iso_text_is_accepted():
    naive_now = NOW.replace(tzinfo=None)
    assert next_due(None, 60, naive_now) == NOW
    assert next_due("2025-03-01T11:55:00.000000Z", 900, NOW) == NOW + timedelta(minutes=10)
    assert next_due(datetime(2025, 3, 1, 13, 55, tzinfo=timezone(timedelta(hours=2))), 900, NOW) \
        == NOW + timedelta(minutes=10)


def test_iso_round_trip():
    assert to_iso(NOW) == "2025-03-01T12:00:00.000000Z"
    assert parse_iso(to_iso(NOW)) == NOW
    assert parse_iso("2025-03-01T14:00:00+02:00") == NOW
