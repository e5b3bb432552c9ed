"""Connection bodies: what is accepted, the defaults, and a 400 naming the field for everything else."""
import re

import pytest

from mailextract.connections.requests import ConnectionRequest
from mailextract.connections.schedule import ACCEPTED_FORMS
from mailextract.errors import InvalidRequest

BASE = {"mailboxes": ["alice@contoso.com"], "schedule": "every 15 minutes"}
POST_FIELDS = "config, enabled, folders, id, mailboxes, name, options, schedule"
PUT_FIELDS = "config, enabled, folders, mailboxes, name, options, schedule"


def _error(body, *, with_id=True) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        ConnectionRequest.parse(body, with_id=with_id)
    return info.value


def test_minimal_body_gets_the_defaults_and_a_generated_id():
    req = ConnectionRequest.parse(BASE, with_id=True)
    assert re.fullmatch(r"conn-[0-9a-f]{12}", req.id)
    assert (req.name, req.mailboxes, req.folders, req.schedule, req.interval_seconds, req.options, req.enabled,
            req.config) == (None, ["alice@contoso.com"], None, "every 15 minutes", 900,
                            {"body_format": "html", "include_attachments": False, "purge_deleted": False},
                            True, None)
    assert ConnectionRequest.parse(BASE, with_id=True).id != req.id
    assert ConnectionRequest.parse({**BASE, "id": None}, with_id=True).id.startswith("conn-")


def test_full_body():
    config = {"tenant_id": "t", "outlook_client_id": "c", "outlook_client_secret": "s"}
    req = ConnectionRequest.parse({
        "id": "sales-team", "name": "  Sales  ", "config": config,
        "mailboxes": [" alice@contoso.com ", "bob@contoso.com"], "folders": [" Inbox ", "Sent Items"],
        "schedule": "  Every 2 Hours ", "options": {"body_format": "text", "include_attachments": True,
                                                    "purge_deleted": True},
        "enabled": False}, with_id=True)
    assert req == ConnectionRequest("sales-team", "Sales", ["alice@contoso.com", "bob@contoso.com"],
                                    ["Inbox", "Sent Items"], "Every 2 Hours", 7200,
                                    {"body_format": "text", "include_attachments": True, "purge_deleted": True},
                                    False, config)
    assert "config" not in repr(req)  # the request's secret stays out of reprs and logs


def test_partial_options_keep_the_other_defaults():
    req = ConnectionRequest.parse({**BASE, "options": {"purge_deleted": True}}, with_id=True)
    assert req.options == {"body_format": "html", "include_attachments": False, "purge_deleted": True}


def test_put_bodies_have_no_id():
    assert ConnectionRequest.parse(BASE, with_id=False).id is None
    assert str(_error({**BASE, "id": "x"}, with_id=False)) == f"unknown field(s): id; expected {PUT_FIELDS}"


def test_100_mailboxes_are_accepted():
    mailboxes = [f"user{i}@contoso.com" for i in range(100)]
    assert ConnectionRequest.parse({**BASE, "mailboxes": mailboxes}, with_id=True).mailboxes == mailboxes


@pytest.mark.parametrize("body, message", [
    ([], "the request body must be a JSON object"),
    ("x", "the request body must be a JSON object"),
    (None, "the request body must be a JSON object"),
    ({**BASE, "extra": 1, "colour": 2}, f"unknown field(s): colour, extra; expected {POST_FIELDS}"),
    ({**BASE, "id": ""}, "id must be a non-empty string"),
    ({**BASE, "id": 42}, "id must be a non-empty string"),
    ({**BASE, "id": "a/b"}, "id must not contain '/', '\\', '#', '?' or control characters"),
    ({**BASE, "id": " a"}, "id must not start or end with spaces"),
    ({**BASE, "id": "x" * 257}, "id must be at most 256 characters"),
    ({**BASE, "id": "batch_x"}, "id must not start with 'batch_' (reserved for batches)"),
    ({**BASE, "name": ""}, "name must be a non-blank string of at most 200 characters, or null"),
    ({**BASE, "name": "x" * 201}, "name must be a non-blank string of at most 200 characters, or null"),
    ({**BASE, "name": 7}, "name must be a non-blank string of at most 200 characters, or null"),
    ({"schedule": "hourly"}, "mailboxes must be a non-empty list of email addresses"),
    ({**BASE, "mailboxes": []}, "mailboxes must be a non-empty list of email addresses"),
    ({**BASE, "mailboxes": "alice@contoso.com"}, "mailboxes must be a non-empty list of email addresses"),
    ({**BASE, "mailboxes": [f"u{i}@contoso.com" for i in range(101)]},
     "mailboxes has 101 entries; at most 100 per connection"),
    ({**BASE, "mailboxes": ["alice@contoso.com", "nope"]}, "mailboxes[1] is not an email address: 'nope'"),
    ({**BASE, "mailboxes": [None]}, "mailboxes[0] is required and must be an email address"),
    ({**BASE, "mailboxes": ["a@contoso.com", "b@contoso.com", "A@Contoso.com"]},
     "mailboxes lists these more than once: A@Contoso.com, a@contoso.com"),
    ({**BASE, "folders": []}, "folders must be a non-empty list of folder names, or null for every folder"),
    ({**BASE, "folders": "Inbox"}, "folders must be a non-empty list of folder names, or null for every folder"),
    ({**BASE, "folders": ["Inbox", " "]}, "folders must be a non-empty list of folder names, or null for every folder"),
    ({**BASE, "folders": ["Inbox", 3]}, "folders must be a non-empty list of folder names, or null for every folder"),
    ({**BASE, "folders": [f"f{i}" for i in range(101)]}, "folders has 101 entries; at most 100"),
    ({**BASE, "folders": ["Inbox", "inbox "]}, "folders lists these more than once: Inbox, inbox"),
    ({"mailboxes": ["alice@contoso.com"]}, f"schedule is required and must be one of {ACCEPTED_FORMS}"),
    ({**BASE, "schedule": "weekly"}, f"schedule must be one of {ACCEPTED_FORMS}; got 'weekly'"),
    ({**BASE, "schedule": "every 8 days"},
     "schedule 'every 8 days' is too far apart: at least every 7 days (every 168 hours, every 10080 minutes)"),
    ({**BASE, "options": "x"}, "options must be an object"),
    ({**BASE, "options": {"folders": ["Inbox"]}},
     "unknown option(s): folders; known: body_format, include_attachments, purge_deleted"),
    ({**BASE, "options": {"body_format": "pdf"}}, "options.body_format must be 'html' or 'text'"),
    ({**BASE, "options": {"include_attachments": "yes"}}, "options.include_attachments must be true or false"),
    ({**BASE, "options": {"purge_deleted": 1}}, "options.purge_deleted must be true or false"),
    ({**BASE, "enabled": "true"}, "enabled must be true or false"),
    ({**BASE, "enabled": None}, "enabled must be true or false"),
    ({**BASE, "config": "x"}, "config must be an object"),
    ({**BASE, "config": {"client_secret": "x", "tenant": "t"}},
     "unknown config field(s): client_secret, tenant; known: outlook_client_certificate_pem, "
     "outlook_client_certificate_thumbprint, outlook_client_id, outlook_client_secret, tenant_id"),
    ({**BASE, "config": {"outlook_client_secret": 5}}, "config.outlook_client_secret must be a string"),
])
def test_bad_bodies(body, message):
    assert str(_error(body)) == message


def test_errors_name_their_field():
    assert _error({**BASE, "mailboxes": ["x"]}).field == "mailboxes[0]"
    assert _error({**BASE, "id": "a#b"}).field == "id"
    assert _error({**BASE, "schedule": "never"}).field == "schedule"
    assert _error({**BASE, "options": {"purge_deleted": None}}).field == "options.purge_deleted"
