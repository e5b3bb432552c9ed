"""Retry-After parsing and backoff bounds."""

from datetime import datetime, timezone

import pytest

from mailextract.graph.retry import GraphErrorBody, RetryPolicy, is_delta_expired, parse_retry_after

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("value, expected", [
    ("7", 7.0), (" 0 ", 0.0), ("120", 120.0), ("1.5", 1.5),
    ("Wed, 01 May 2024 12:00:30 GMT", 30.0),
    ("Wed, 01 May 2024 11:59:00 GMT", 0.0),  # a date in the past: go now
    (None, None), ("", None), ("-3", None), ("soon", None), ("nan", None), ("inf", None),
])
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize("retry_number, ceiling", [(0, 0.5), (1, 1.0), (3, 4.0), (6, 30.0), (50, 30.0), (10_000, 30.0)])
def test_full_jitter_backoff_stays_within_bounds(retry_number, ceiling):
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0)
    assert policy.backoff(retry_number, lambda: 0.0) == 0.0
    assert policy.backoff(retry_number, lambda: 0.5) == ceiling / 2
    high = policy.backoff(retry_number, lambda: 0.999999)
    assert ceiling * 0.999 < high < ceiling


def test_graph_error_body_parsing():
    assert GraphErrorBody.from_json({"error": {"code": "ErrorAccessDenied", "message": "no"}}) == GraphErrorBody("ErrorAccessDenied", "no")
    assert GraphErrorBody.from_json({"error": "invalid_client", "error_description": "bad"}) == GraphErrorBody("invalid_client", "bad")
    assert GraphErrorBody.from_json("<html>") == GraphErrorBody()
    assert GraphErrorBody("ApplicationThrottled", "Application is over its MailboxConcurrency limit.").is_mailbox_concurrency
    assert not GraphErrorBody("ApplicationThrottled", "Application is over its RequestRate limit.").is_mailbox_concurrency


def test_delta_expiry_detection():
    assert is_delta_expired(410, GraphErrorBody())
    assert is_delta_expired(400, GraphErrorBody("SyncStateNotFound", ""))
    assert is_delta_expired(400, GraphErrorBody("resyncRequired", ""))
    assert not is_delta_expired(400, GraphErrorBody("BadRequest", ""))
