"""Folder selection and the index row of a message (pure parts of the extraction steps)."""
import re

import pytest

from mailextract.errors import InvalidRequest
from mailextract.extraction.mail_writer import message_record
from mailextract.extraction.planning import select_folders
from mailextract.extraction.pages import MESSAGE_SELECT
from mailextract.graph.models import MailFolder


def _mailbox(*paths: str) -> list[MailFolder]:
    """Folders in the order the Graph client lists them (parents before children)."""
    ids = {p: "id-" + p.lower().replace(" ", "-").replace("/", ".") for p in paths}
    return [MailFolder(id=ids[p], display_name=p.rsplit("/", 1)[-1],
                       parent_id=ids.get(p.rsplit("/", 1)[0]) if "/" in p else None,
                       path=p, total_count=i) for i, p in enumerate(paths)]


MAILBOX = _mailbox(
    "Inbox", "Drafts", "Sent Items", "Deleted Items", "Junk Email", "Archive", "Überprüfung", "受信トレイ",
    "Inbox/Projects", "Inbox/Projects2", "Archive/2023", "Überprüfung/Fällig 📬",
    "Inbox/Projects/Clients",
    "Inbox/Projects/Clients/Acme",
)


def _paths(wanted) -> list[str]:
    return [f.path for f in select_folders(MAILBOX, wanted)]


@pytest.mark.parametrize("wanted", [None, ()])
def test_no_folders_named_means_every_folder_in_mailbox_order(wanted):
    chosen = select_folders(MAILBOX, wanted)
    assert chosen == MAILBOX
    assert chosen is not MAILBOX


def test_a_top_folder_brings_all_its_subfolders():
    assert _paths(("Inbox",)) == ["Inbox", "Inbox/Projects", "Inbox/Projects2", "Inbox/Projects/Clients",
                                  "Inbox/Projects/Clients/Acme"]


def test_a_nested_path_brings_its_subtree_but_not_a_sibling_with_the_same_prefix():
    assert _paths(("Inbox/Projects",)) == ["Inbox/Projects", "Inbox/Projects/Clients",
                                           "Inbox/Projects/Clients/Acme"]


@pytest.mark.parametrize("name", ["Inbox/Projects/Clients", "inbox/projects/clients", "INBOX/PROJECTS/CLIENTS",
                                  "/Inbox/Projects/Clients/", " Inbox/Projects/Clients "])
def test_nested_path_matches_case_insensitively(name):
    assert _paths((name,)) == ["Inbox/Projects/Clients", "Inbox/Projects/Clients/Acme"]


def test_deepest_folder_alone():
    assert _paths(("Inbox/Projects/Clients/Acme",)) == ["Inbox/Projects/Clients/Acme"]


@pytest.mark.parametrize("name, expected", [
    ("inbox", ["Inbox", "Inbox/Projects", "Inbox/Projects2", "Inbox/Projects/Clients",
               "Inbox/Projects/Clients/Acme"]),
    ("sentitems", ["Sent Items"]),
    ("SentItems", ["Sent Items"]),
    ("deleteditems", ["Deleted Items"]),
    ("drafts", ["Drafts"]),
    ("junkemail", ["Junk Email"]),
    ("archive", ["Archive", "Archive/2023"]),
    ("sent items", ["Sent Items"]),
    ("Deleted Items", ["Deleted Items"]),
])
def test_well_known_names(name, expected):
    assert _paths((name,)) == expected


@pytest.mark.parametrize("name, expected", [
    ("Projects", ["Inbox/Projects", "Inbox/Projects/Clients", "Inbox/Projects/Clients/Acme"]),
    ("clients", ["Inbox/Projects/Clients", "Inbox/Projects/Clients/Acme"]),
    ("ACME", ["Inbox/Projects/Clients/Acme"]),
    ("2023", ["Archive/2023"]),
])
def test_display_names_of_subfolders(name, expected):
    assert _paths((name,)) == expected


@pytest.mark.parametrize("name, expected", [
    ("Überprüfung", ["Überprüfung", "Überprüfung/Fällig 📬"]),
    ("überprüfung", ["Überprüfung", "Überprüfung/Fällig 📬"]),
    ("ÜBERPRÜFUNG/FÄLLIG 📬", ["Überprüfung/Fällig 📬"]),
    ("fällig 📬", ["Überprüfung/Fällig 📬"]),
    ("受信トレイ", ["受信トレイ"]),
])
def test_unicode_folder_names(name, expected):
    assert _paths((name,)) == expected


def test_folder_by_id():
    assert _paths(("id-inbox.projects.clients",)) == ["Inbox/Projects/Clients", "Inbox/Projects/Clients/Acme"]


def test_several_names_keep_mailbox_order_without_duplicates():
    assert _paths(("Inbox/Projects/Clients", "sentitems", "Drafts", "Inbox", "inbox")) == [
        "Inbox", "Drafts", "Sent Items", "Inbox/Projects", "Inbox/Projects2", "Inbox/Projects/Clients",
        "Inbox/Projects/Clients/Acme"]


@pytest.mark.parametrize("wanted, missing", [
    (("Nope",), "Nope"),
    (("Inbox", "Outbox"), "Outbox"),
    (("Inbox/Projects/Client",), "Inbox/Projects/Client"),      # a prefix of a path is not a folder
    (("Inbox/Clients",), "Inbox/Clients"),                      # a real name under the wrong parent
    (("Project",), "Project"),
    (("outbox",), "outbox"),
])
def test_unknown_folder_is_named(wanted, missing):
    with pytest.raises(InvalidRequest) as info:
        select_folders(MAILBOX, wanted)
    assert str(info.value) == f"folder '{missing}' was not found in the mailbox"
    assert info.value.field == "options.folders"


def test_unknown_folder_in_an_empty_mailbox():
    with pytest.raises(InvalidRequest) as info:
        select_folders([], ("Inbox",))
    assert str(info.value) == "folder 'Inbox' was not found in the mailbox"


# --- index rows ------------------------------------------------------------------------------
GRAPH_MESSAGE = {
    "id": "AAMkAGI2TG93AAA=",
    "subject": "Quarterly report",
    "from": {"emailAddress": {"name": "Alice Example", "address": "alice@contoso.com"}},
    "sender": {"emailAddress": {"name": "Assistant", "address": "assistant@contoso.com"}},
    "toRecipients": [{"emailAddress": {"name": "Bob", "address": "bob@contoso.com"}},
                     {"emailAddress": {"name": "Carol", "address": "carol@contoso.com"}}],
    "ccRecipients": [{"emailAddress": {"name": "Dan", "address": "dan@contoso.com"}}],
    "receivedDateTime": "2024-03-01T10:00:00Z",
    "sentDateTime": "2024-03-01T09:59:58Z",
    "hasAttachments": True,
    "isRead": False,
    "importance": "high",
    "conversationId": "conv-1",
    "internetMessageId": "<abc@contoso.com>",
    "bodyPreview": "Hello team",
    "body": {"contentType": "html", "content": "<p>Hello team</p>"},
    "parentFolderId": "id-inbox",
    "categories": ["Red category"],
}
ATTACHMENTS = [{"id": "att1", "name": "report.pdf", "content_type": "application/pdf", "size": 10,
                "kind": "file", "blob": "c1/att/x"}]


def _record(message, **overrides):
    kwargs = dict(user_upn="bob@contoso.com", folder_path="Inbox/Projects", run_id="run-1", body_blob="c1/bodies/x.html",
                  body_offset=40, body_length=17, body_format="html", attachments=ATTACHMENTS)
    kwargs.update(overrides)
    return message_record(message, **kwargs)


def test_full_message_record():
    record = _record(GRAPH_MESSAGE)
    extracted_at = record.pop("extracted_at")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", extracted_at)
    assert record == {
        "id": "AAMkAGI2TG93AAA=", "user_upn": "bob@contoso.com", "subject": "Quarterly report",
        "from_address": "alice@contoso.com", "from_name": "Alice Example",
        "to": ["bob@contoso.com", "carol@contoso.com"], "cc": ["dan@contoso.com"],
        "received_at": "2024-03-01T10:00:00Z", "sent_at": "2024-03-01T09:59:58Z",
        "folder": "Inbox/Projects", "folder_id": "id-inbox", "has_attachments": True, "is_read": False,
        "importance": "high", "conversation_id": "conv-1", "internet_message_id": "<abc@contoso.com>",
        "preview": "Hello team", "categories": ["Red category"], "body_blob": "c1/bodies/x.html",
        "body_offset": 40, "body_length": 17, "body_format": "html", "body_chars": 17, "attachments": ATTACHMENTS, "run_id": "run-1",
    }


@pytest.mark.parametrize("missing_from", [{"from": None}, {"from": {}}, {}])
def test_sender_is_used_when_from_is_missing(missing_from):
    message = {k: v for k, v in GRAPH_MESSAGE.items() if k != "from"} | missing_from
    record = _record(message)
    assert (record["from_address"], record["from_name"]) == ("assistant@contoso.com", "Assistant")


def test_minimal_message_has_empty_defaults():
    record = _record({"id": "m1"}, attachments=[], body_format="text")
    assert {k: record[k] for k in ("id", "subject", "from_address", "from_name", "to", "cc", "received_at",
                                   "sent_at", "folder_id", "has_attachments", "is_read", "importance",
                                   "conversation_id", "internet_message_id", "preview", "categories",
                                   "body_chars", "attachments", "body_format")} == {
        "id": "m1", "subject": "", "from_address": "", "from_name": "", "to": [], "cc": [],
        "received_at": None, "sent_at": None, "folder_id": None, "has_attachments": False, "is_read": False,
        "importance": None, "conversation_id": None, "internet_message_id": None, "preview": "",
        "categories": [], "body_chars": 0, "attachments": [], "body_format": "text"}


def test_nulls_from_graph_become_empty_values():
    message = {"id": "m1", "subject": None, "from": None, "sender": None, "toRecipients": None,
               "ccRecipients": None, "bodyPreview": None, "body": None, "categories": None,
               "hasAttachments": None, "isRead": None}
    record = _record(message)
    assert (record["subject"], record["from_address"], record["to"], record["cc"], record["preview"],
            record["body_chars"], record["categories"], record["has_attachments"], record["is_read"]) == (
        "", "", [], [], "", 0, [], False, False)


def test_sender_without_name():
    record = _record({"id": "m1", "from": {"emailAddress": {"address": "noreply@contoso.com"}}})
    assert (record["from_address"], record["from_name"]) == ("noreply@contoso.com", "")


def test_preview_is_capped_at_512_characters():
    assert _record(GRAPH_MESSAGE | {"bodyPreview": "é" * 511})["preview"] == "é" * 511
    assert _record(GRAPH_MESSAGE | {"bodyPreview": "é" * 512})["preview"] == "é" * 512
    assert _record(GRAPH_MESSAGE | {"bodyPreview": "ab" * 400})["preview"] == ("ab" * 400)[:512]


def test_body_chars_counts_characters_not_bytes():
    record = _record(GRAPH_MESSAGE | {"body": {"contentType": "text", "content": "Grüße 📬\n" * 1000}})
    assert record["body_chars"] == 8000


def test_the_body_itself_is_not_in_the_row():
    record = _record(GRAPH_MESSAGE)
    assert "<p>Hello team</p>" not in repr(record)


def test_message_select_covers_what_the_row_reads():
    assert set(MESSAGE_SELECT) == {"id", "subject", "from", "sender", "toRecipients", "ccRecipients",
                                   "receivedDateTime", "sentDateTime", "hasAttachments", "isRead", "importance",
                                   "conversationId", "internetMessageId", "bodyPreview", "body",
                                   "parentFolderId", "categories"}
