"""Batch ids, the batch status users see, totals, and the JSON views of runs and emails."""
import pytest

from mailextract.errors import InvalidRequest
from mailextract.extraction.batches import reported_status, totals, validate_batch_id
from mailextract.extraction.service import child_connection_id, email_view, run_view
from mailextract.storage.keys import validate_connection_id


# --- batch ids -------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["batch_1a2b3c4d5e6f7a8b9c0d", "batch_x", "batch_" + "a" * 58])
def test_valid_batch_ids(value):
    assert validate_batch_id(value) == value


@pytest.mark.parametrize("value", ["batch_", "batch_" + "a" * 59, "Batch_abc", "abc", "batch-abc", "batch_ab-cd",
                                   "batch_1a2b-0001", "batch_a/b", "batch_a b", "xbatch_abc", ""])
def test_invalid_batch_ids(value):
    with pytest.raises(InvalidRequest) as info:
        validate_batch_id(value)
    assert str(info.value) == f"'{value}' is not a batch id (batch ids look like batch_1a2b...)"
    assert info.value.field == "batch_id"


def test_invalid_batch_id_is_quoted_only_in_part():
    value = "x" * 200
    with pytest.raises(InvalidRequest) as info:
        validate_batch_id(value)
    assert str(info.value) == f"'{'x' * 80}' is not a batch id (batch ids look like batch_1a2b...)"


# --- child connection ids --------------------------------------------------------------------
@pytest.mark.parametrize("index, expected", [(0, "batch_abc-0000"), (7, "batch_abc-0007"),
                                             (999, "batch_abc-0999"), (12345, "batch_abc-12345")])
def test_child_connection_id(index, expected):
    assert child_connection_id("batch_abc", index) == expected


def test_child_connection_ids_are_reserved_connection_ids_and_not_batch_ids():
    child = child_connection_id("batch_" + "f" * 58, 999)
    assert validate_connection_id(child, allow_reserved=True) == child
    with pytest.raises(InvalidRequest):
        validate_connection_id(child)
    with pytest.raises(InvalidRequest):
        validate_batch_id(child)


# --- reported status -------------------------------------------------------------------------
def _runs(*statuses):
    return [{"status": s, "messages_extracted": 0} for s in statuses]


@pytest.mark.parametrize("runs, expected", [
    (_runs("paused", "paused"), "paused"),
    (_runs("paused", "completed", "failed", "cancelled"), "paused"),
    (_runs("pending", "paused"), "paused"),
    (_runs(), "paused"),
    (_runs("paused", "in_progress"), "pausing"),
    (_runs("paused", "pausing"), "pausing"),
    (_runs("pausing"), "pausing"),
])
def test_pausing_batch_is_reported_paused_once_no_run_works(runs, expected):
    assert reported_status({"status": "pausing"}, runs) == expected


@pytest.mark.parametrize("status", ["pending", "in_progress", "paused", "completed", "cancelled", "failed"])
def test_other_batch_statuses_are_reported_as_stored(status):
    assert reported_status({"status": status}, _runs("paused", "paused")) == status
    assert reported_status({"status": status}, _runs("in_progress")) == status


# --- totals ----------------------------------------------------------------------------------
def test_totals_count_every_status_and_sum_messages():
    runs = [{"status": "completed", "messages_extracted": 10}, {"status": "completed", "messages_extracted": 5},
            {"status": "failed", "messages_extracted": 2}, {"status": "in_progress", "messages_extracted": 7},
            {"status": "pending"}, {"status": "paused", "messages_extracted": 1}]
    assert totals(runs) == {"users": 6, "pending": 1, "in_progress": 1, "pausing": 0, "paused": 1,
                            "completed": 2, "cancelled": 0, "failed": 1, "messages_extracted": 25}


def test_totals_of_no_runs():
    assert totals([]) == {"users": 0, "pending": 0, "in_progress": 0, "pausing": 0, "paused": 0,
                          "completed": 0, "cancelled": 0, "failed": 0, "messages_extracted": 0}


# --- run view --------------------------------------------------------------------------------
JOB = {"connection_id": "c1", "user_upn": "alice@contoso.com", "status": "in_progress", "run_id": "r1",
       "instance_id": "extract-r1", "credential": "vault-ref", "options": {"folders": None},
       "checkpoint": {"plan": [], "folder": 0, "cursor": None},
       "created_at": "2024-03-01T10:00:00.000000Z", "updated_at": "2024-03-01T10:05:00.000000Z"}


def test_run_view_of_a_new_run_has_zero_progress():
    assert run_view(JOB) == {
        "connection_id": "c1", "kind": "extraction", "user_upn": "alice@contoso.com", "status": "in_progress",
        "progress": {"messages_extracted": 0, "folders_done": 0, "folders_total": 0, "pages_done": 0,
                     "attachments_saved": 0, "current_folder": None},
        "created_at": "2024-03-01T10:00:00.000000Z", "updated_at": "2024-03-01T10:05:00.000000Z",
        "error": None}


def test_run_view_with_progress_error_and_batch():
    job = JOB | {"messages_extracted": 120, "folders_done": 2, "folders_total": 5, "pages_done": 3,
                 "attachments_saved": 4, "current_folder": "Inbox/Projects", "status": "failed",
                 "error": {"code": "access_denied", "message": "no"}, "parent_batch_id": "batch_abc",
                 "connection_id": "batch_abc-0001"}
    assert run_view(job) == {
        "connection_id": "batch_abc-0001", "kind": "extraction", "user_upn": "alice@contoso.com", "status": "failed",
        "progress": {"messages_extracted": 120, "folders_done": 2, "folders_total": 5, "pages_done": 3,
                     "attachments_saved": 4, "current_folder": "Inbox/Projects"},
        "created_at": "2024-03-01T10:00:00.000000Z", "updated_at": "2024-03-01T10:05:00.000000Z",
        "error": {"code": "access_denied", "message": "no"}, "batch_id": "batch_abc"}


def test_run_view_never_shows_credentials_or_internals():
    view = run_view(JOB | {"parent_batch_id": "batch_abc"})
    assert not {"credential", "run_id", "instance_id", "checkpoint", "options"} & set(view)
    assert "vault-ref" not in repr(view)


# --- email view ------------------------------------------------------------------------------
def test_email_view_of_an_index_row():
    record = {"id": "m1", "subject": "Hi", "from_address": "alice@contoso.com", "from_name": "Alice",
              "to": ["bob@contoso.com"], "cc": [], "received_at": "2024-03-01T10:00:00Z",
              "sent_at": "2024-03-01T09:59:00Z", "folder": "Inbox", "folder_id": "id-inbox", "is_read": True,
              "has_attachments": False, "importance": "normal", "conversation_id": "conv",
              "internet_message_id": "<x@y>", "preview": "Hello", "categories": ["Blue"],
              "body_blob": "c1/bodies/9f8e.html", "body_offset": 120, "body_length": 5, "body_format": "html",
              "body_chars": 5, "attachments": [],
              "run_id": "r1", "extracted_at": "2024-03-01T10:01:00.000000Z"}
    assert email_view(record) == {
        "id": "m1", "subject": "Hi", "from": {"address": "alice@contoso.com", "name": "Alice"},
        "to": ["bob@contoso.com"], "cc": [], "received_at": "2024-03-01T10:00:00Z",
        "sent_at": "2024-03-01T09:59:00Z", "folder": "Inbox", "is_read": True, "has_attachments": False,
        "importance": "normal", "conversation_id": "conv", "preview": "Hello",
        "body_blob": "c1/bodies/9f8e.html", "body_offset": 120, "body_length": 5, "body_format": "html",
        "attachments": [], "deleted_at": None}


def test_email_view_of_a_sparse_row():
    assert email_view({"id": "m2", "to": None, "attachments": None}) == {
        "id": "m2", "subject": None, "from": {"address": None, "name": None}, "to": [], "cc": [],
        "received_at": None, "sent_at": None, "folder": None, "is_read": None, "has_attachments": None,
        "importance": None, "conversation_id": None, "preview": None, "body_blob": None, "body_offset": None,
        "body_length": None, "body_format": None, "attachments": [], "deleted_at": None}


def test_sync_run_view_names_its_mailboxes_and_deletions():
    job = JOB | {"kind": "sync", "user_upn": None, "mailboxes": ["a@contoso.com", "b@contoso.com"],
                 "messages_deleted": 3}
    view = run_view(job)
    assert (view["kind"], view["user_upn"], view["mailboxes"]) == ("sync", None, ["a@contoso.com", "b@contoso.com"])
    assert view["progress"]["messages_deleted"] == 3
