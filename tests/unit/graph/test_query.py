"""Query building: dates only as aware datetimes, field names checked, path segments encoded."""

from datetime import date, datetime, timedelta, timezone

import pytest

from mailextract.errors import InvalidRequest
from mailextract.graph import query as q

UTC = timezone.utc


def test_received_window_is_formatted_in_utc():
    after = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    before = datetime(2024, 2, 1, 3, 0, tzinfo=timezone(timedelta(hours=2)))
    assert q.received_filter(after, before) == (
        "receivedDateTime ge 2024-01-01T00:00:00Z and receivedDateTime lt 2024-02-01T01:00:00Z")
    assert q.received_filter(after, None) == "receivedDateTime ge 2024-01-01T00:00:00Z"
    assert q.received_filter(None, after) == "receivedDateTime lt 2024-01-01T00:00:00Z"
    assert q.received_filter(None, None) is None


def test_microseconds_are_kept():
    assert q.odata_datetime(datetime(2024, 1, 1, 0, 0, 0, 1500, tzinfo=UTC), "x") == "2024-01-01T00:00:00.001500Z"


@pytest.mark.parametrize("bad", [
    "2024-01-01T00:00:00Z",
    "2024-01-01T00:00:00Z or subject eq 'x'",
    date(2024, 1, 1),
    1704067200,
    datetime(2024, 1, 1),  # naive: ambiguous
])
def test_received_after_rejects_anything_but_an_aware_datetime(bad):
    with pytest.raises(InvalidRequest) as info:
        q.received_filter(bad, None)
    assert info.value.field == "received_after"


def test_empty_or_reversed_window_is_rejected():
    t = datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidRequest):
        q.received_filter(t, t)


def test_select_accepts_property_names_only():
    assert q.select_clause(["id", "subject", "id", "from"]) == "id,subject,from"
    assert q.select_clause("id, subject") == "id,subject"
    assert q.select_clause(None) is None
    for bad in (["id", "subject)&$expand=attachments"], ["id;drop"], [], ["9abc"], [""]):
        with pytest.raises(InvalidRequest):
            q.select_clause(bad)


def test_orderby_validation():
    assert q.orderby_clause("receivedDateTime desc") == "receivedDateTime desc"
    assert q.orderby_clause("receivedDateTime, id asc") == "receivedDateTime,id asc"
    for bad in ("receivedDateTime sideways", "receivedDateTime desc&$top=1", "", 5):
        with pytest.raises(InvalidRequest):
            q.orderby_clause(bad)


def test_top_and_page_size_bounds():
    assert q.top_value(1) == 1 and q.top_value(1000) == 1000
    for bad in (0, 1001, True, "10", 2.0):
        with pytest.raises(InvalidRequest):
            q.top_value(bad)
    assert q.max_page_size_preference(50) == "odata.maxpagesize=50"


def test_body_preference():
    assert q.body_preference("text") == 'outlook.body-content-type="text"'
    assert q.body_preference("html") == 'outlook.body-content-type="html"'
    with pytest.raises(InvalidRequest):
        q.body_preference('text", evil="1')


def test_path_segments_are_encoded():
    assert q.user_path("alice@contoso.com") == "/users/alice@contoso.com"
    assert q.segment("AAMk/ab+c=", "folder_id") == "AAMk%2Fab%2Bc%3D"
    assert q.segment("../../me", "folder_id") == "..%2F..%2Fme"
    for bad in ("", "   ", None, "a\r\nX-Evil: 1"):
        with pytest.raises(InvalidRequest):
            q.segment(bad, "folder_id")
