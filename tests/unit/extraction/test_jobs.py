"""Run statuses, the transitions users may ask for (409 otherwise), and extraction options."""
from datetime import datetime, timedelta, timezone

import pytest

from mailextract import jobs as J
from mailextract.errors import InvalidRequest, JobConflict
from mailextract.jobs import ExtractionOptions, require_transition

UTC = timezone.utc
RUN = "the run of connection 'c1'"


# --- transitions -----------------------------------------------------------------------------
@pytest.mark.parametrize("action, status", [
    ("pause", "pending"), ("pause", "in_progress"),
    ("continue", "pausing"), ("continue", "paused"),
    ("cancel", "pending"), ("cancel", "in_progress"), ("cancel", "pausing"), ("cancel", "paused"),
])
def test_allowed_transitions_pass(action, status):
    assert require_transition(action, status, RUN) is None


@pytest.mark.parametrize("action, status, message", [
    ("pause", "pausing", f"{RUN} is pausing; only a run that is pending or in_progress can be paused"),
    ("pause", "paused", f"{RUN} is paused; only a run that is pending or in_progress can be paused"),
    ("continue", "pending", f"{RUN} is pending; only a run that is pausing or paused can be continued"),
    ("continue", "in_progress", f"{RUN} is in_progress; only a run that is pausing or paused can be continued"),
])
def test_active_run_in_the_wrong_state_is_a_conflict(action, status, message):
    with pytest.raises(JobConflict) as info:
        require_transition(action, status, RUN)
    assert str(info.value) == message
    assert info.value.status == status
    assert info.value.to_dict() == {"code": "job_conflict", "message": message}


@pytest.mark.parametrize("status", ["completed", "cancelled", "failed"])
@pytest.mark.parametrize("action, past", [("pause", "paused"), ("continue", "continued"), ("cancel", "cancelled")])
def test_finished_run_accepts_no_transition(status, action, past):
    with pytest.raises(JobConflict) as info:
        require_transition(action, status, RUN)
    assert str(info.value) == f"{RUN} is {status}; a {status} run cannot be {past}"
    assert info.value.status == status


def test_status_groups():
    assert J.ACTIVE == ("pending", "in_progress", "pausing", "paused")
    assert J.FINISHED == ("completed", "cancelled", "failed")


def test_utcnow_iso_is_utc_with_z():
    stamp = J.utcnow_iso()
    parsed = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - parsed) < timedelta(seconds=5)


# --- options ---------------------------------------------------------------------------------
def _invalid(raw):
    with pytest.raises(InvalidRequest) as info:
        ExtractionOptions.parse(raw)
    return info.value


def test_no_options_means_everything_as_html():
    assert ExtractionOptions.parse(None) == ExtractionOptions(None, None, None, False, "html")
    assert ExtractionOptions.parse({}) == ExtractionOptions(None, None, None, False, "html")


def test_full_options_are_parsed():
    opts = ExtractionOptions.parse({
        "folders": ["  Inbox/Projects ", "sentitems"], "received_after": "2024-01-01T00:00:00Z",
        "received_before": "2024-03-01T12:30:00+02:00", "include_attachments": True, "body_format": "text"})
    assert opts.folders == ("Inbox/Projects", "sentitems")
    assert opts.received_after == datetime(2024, 1, 1, tzinfo=UTC)
    assert opts.received_before == datetime(2024, 3, 1, 10, 30, tzinfo=UTC)
    assert opts.received_before.utcoffset() == timedelta(hours=2)
    assert opts.include_attachments is True
    assert opts.body_format == "text"


@pytest.mark.parametrize("value, expected", [
    ("2024-01-01", datetime(2024, 1, 1, tzinfo=UTC)),
    ("2024-01-01T08:15:00", datetime(2024, 1, 1, 8, 15, tzinfo=UTC)),
    ("2024-01-01T08:15:00Z", datetime(2024, 1, 1, 8, 15, tzinfo=UTC)),
    ("2024-01-01T08:15:00.250Z", datetime(2024, 1, 1, 8, 15, 0, 250000, tzinfo=UTC)),
    ("2024-01-01T10:15:00+02:00", datetime(2024, 1, 1, 8, 15, tzinfo=UTC)),
    ("2024-01-01T03:15:00-05:00", datetime(2024, 1, 1, 8, 15, tzinfo=UTC)),
])
def test_received_after_forms(value, expected):
    parsed = ExtractionOptions.parse({"received_after": value}).received_after
    assert parsed == expected
    assert parsed.tzinfo is not None


@pytest.mark.parametrize("value", ["2024-01-01", "2024-06-30T23:59:59"])
def test_dates_without_timezone_are_utc(value):
    parsed = ExtractionOptions.parse({"received_before": value}).received_before
    assert parsed.utcoffset() == timedelta(0)
    assert parsed.replace(tzinfo=None) == datetime.fromisoformat(value)


@pytest.mark.parametrize("after, before", [
    ("2024-02-01T00:00:00Z", "2024-01-01T00:00:00Z"),          # after later than before
    ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),          # equal
    ("2024-01-01", "2024-01-01T00:00:00Z"),                    # date-only is midnight UTC: equal
    ("2024-01-01T00:00:00", "2024-01-01T00:00:00+00:00"),      # naive is UTC: equal
    ("2024-01-01T10:00:00+02:00", "2024-01-01T08:00:00Z"),     # same instant, different offsets
    ("2024-01-01T09:00:00", "2024-01-01T10:00:00+01:00"),      # naive 09:00 UTC vs 09:00 UTC
])
def test_received_after_must_be_earlier_than_received_before(after, before):
    err = _invalid({"received_after": after, "received_before": before})
    assert str(err) == "options.received_after must be earlier than options.received_before"
    assert err.field == "options.received_after"


def test_received_window_across_offsets_is_accepted():
    # 09:30 at +02:00 is 07:30 UTC, earlier than 08:00 UTC although its wall clock is later.
    opts = ExtractionOptions.parse({"received_after": "2024-01-01T09:30:00+02:00",
                                    "received_before": "2024-01-01T08:00:00Z"})
    assert opts.received_after < opts.received_before


@pytest.mark.parametrize("name", ["received_after", "received_before"])
@pytest.mark.parametrize("value", ["yesterday", "2024-02-30", "2024-13-01", "", "01/02/2024"])
def test_unparseable_dates_are_rejected(name, value):
    err = _invalid({name: value})
    assert str(err) == f"options.{name} is not an ISO 8601 date or date-time: {value!r}"
    assert err.field == f"options.{name}"


@pytest.mark.parametrize("name", ["received_after", "received_before"])
@pytest.mark.parametrize("value", [20240101, 1.5, ["2024-01-01"], {"date": "2024-01-01"}, True])
def test_non_string_dates_are_rejected(name, value):
    err = _invalid({name: value})
    assert str(err) == f"options.{name} must be an ISO 8601 date or date-time string"
    assert err.field == f"options.{name}"


@pytest.mark.parametrize("folders", ["Inbox", [], [""], ["   "], ["Inbox", 3], ["Inbox", None], {"Inbox": 1}])
def test_bad_folder_lists_are_rejected(folders):
    err = _invalid({"folders": folders})
    assert str(err) == "options.folders must be a non-empty list of folder names"
    assert err.field == "options.folders"


def test_unicode_folder_names_are_kept():
    opts = ExtractionOptions.parse({"folders": ["Posteingang/Überprüfung", "受信トレイ", "📬 Mail"]})
    assert opts.folders == ("Posteingang/Überprüfung", "受信トレイ", "📬 Mail")


@pytest.mark.parametrize("value", ["true", 1, 0, None, "yes"])
def test_include_attachments_must_be_boolean(value):
    err = _invalid({"include_attachments": value})
    assert str(err) == "options.include_attachments must be true or false"
    assert err.field == "options.include_attachments"


@pytest.mark.parametrize("value", ["HTML", "pdf", "", None, ["html"]])
def test_body_format_must_be_html_or_text(value):
    err = _invalid({"body_format": value})
    assert str(err) == "options.body_format must be 'html' or 'text'"
    assert err.field == "options.body_format"


def test_unknown_options_are_named_and_known_ones_listed():
    err = _invalid({"folders": ["Inbox"], "since": "2024-01-01", "colour": "red"})
    assert str(err) == ("unknown option(s): colour, since; known: folders, received_after, received_before, "
                        "include_attachments, body_format")
    assert err.field == "options"


@pytest.mark.parametrize("raw", [["folders"], "inbox", 3, True])
def test_options_must_be_an_object(raw):
    err = _invalid(raw)
    assert str(err) == "options must be an object"
    assert err.field == "options"


def test_to_json_shape():
    opts = ExtractionOptions.parse({"folders": ["Inbox"], "received_after": "2024-01-01",
                                    "received_before": "2024-02-01T10:00:00+05:30",
                                    "include_attachments": True, "body_format": "text"})
    assert opts.to_json() == {"folders": ["Inbox"], "received_after": "2024-01-01T00:00:00+00:00",
                              "received_before": "2024-02-01T10:00:00+05:30",
                              "include_attachments": True, "body_format": "text"}
    assert ExtractionOptions().to_json() == {"folders": None, "received_after": None, "received_before": None,
                                             "include_attachments": False, "body_format": "html"}


@pytest.mark.parametrize("raw", [
    None,
    {"folders": ["Inbox/Projects/Clients", "Überprüfung"]},
    {"received_after": "2024-01-01T00:00:00.5Z", "received_before": "2024-01-02T00:00:00-08:00"},
    {"received_before": "2030-12-31"},
    {"include_attachments": True, "body_format": "text"},
])
def test_json_round_trip(raw):
    opts = ExtractionOptions.parse(raw)
    assert ExtractionOptions.from_json(opts.to_json()) == opts
