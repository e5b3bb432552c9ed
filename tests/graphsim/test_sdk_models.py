"""Fidelity: graphsim's JSON parses with Microsoft's own msgraph-sdk models and the fields round-trip.

If a field name or type drifts from Graph's (say a date in the wrong format, or `from` nested
differently), the SDK model comes back with None or the wrong type and these tests fail.
"""
from __future__ import annotations

import base64
from datetime import datetime, timezone

from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
from msgraph.generated.models.attachment_collection_response import AttachmentCollectionResponse
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.file_attachment import FileAttachment
from msgraph.generated.models.importance import Importance
from msgraph.generated.models.mail_folder import MailFolder
from msgraph.generated.models.mail_folder_collection_response import MailFolderCollectionResponse
from msgraph.generated.models.message import Message
from msgraph.generated.models.message_collection_response import MessageCollectionResponse
from msgraph.generated.users.item.mail_folders.item.messages.delta.delta_get_response import DeltaGetResponse

from .helpers import IMMUTABLE, users_url

ALICE = "alice@contoso.com"


def _parse(response, factory):
    assert response.status_code == 200, response.text
    node = JsonParseNodeFactory().get_root_parse_node("application/json", response.content)
    return node.get_object_value(factory)


def _dt(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def test_message_round_trips_through_the_sdk_model(graphsim):
    s = graphsim.session()
    raw = s.get(f"{users_url(graphsim, ALICE)}/messages?$top=1", headers=IMMUTABLE)
    first = raw.json()["value"][0]
    response = s.get(f"{users_url(graphsim, ALICE)}/messages/{first['id']}", headers=IMMUTABLE)
    msg = _parse(response, Message)
    data = response.json()
    assert isinstance(msg, Message)
    assert msg.id == data["id"]
    assert msg.subject == data["subject"]
    assert msg.from_.email_address.address == data["from"]["emailAddress"]["address"]
    assert msg.from_.email_address.name == data["from"]["emailAddress"]["name"]
    assert msg.received_date_time == _dt(data["receivedDateTime"])
    assert msg.sent_date_time == _dt(data["sentDateTime"])
    assert msg.body.content_type == BodyType.Html
    assert msg.body.content == data["body"]["content"]
    assert msg.importance in (Importance.Low, Importance.Normal, Importance.High)
    assert msg.is_read is data["isRead"]
    assert msg.parent_folder_id == data["parentFolderId"]
    assert [r.email_address.address for r in msg.to_recipients] == \
        [r["emailAddress"]["address"] for r in data["toRecipients"]]
    assert msg.conversation_index == base64.b64decode(data["conversationIndex"])
    assert msg.flag.flag_status.value == data["flag"]["flagStatus"]
    assert msg.change_key == data["changeKey"]
    assert not (msg.additional_data or {}).keys() - {"@odata.context", "@odata.etag"}

    text = _parse(s.get(f"{users_url(graphsim, ALICE)}/messages/{first['id']}",
                        headers={"Prefer": 'outlook.body-content-type="text"'}), Message)
    assert text.body.content_type == BodyType.Text


def test_collections_parse_with_next_links(graphsim):
    s = graphsim.session()
    page = _parse(s.get(f"{users_url(graphsim, ALICE)}/messages?$top=5&$count=true"),
                  MessageCollectionResponse)
    assert len(page.value) == 5
    assert page.odata_count == 120
    assert page.odata_next_link.startswith(f"{graphsim.graph_endpoint}/v1.0/users/")
    assert all(isinstance(m.received_date_time, datetime) for m in page.value)
    assert all(not (m.additional_data or {}).keys() - {"@odata.etag"} for m in page.value)

    folders = _parse(s.get(f"{users_url(graphsim, ALICE)}/mailFolders"),
                     MailFolderCollectionResponse)
    truth = {f["displayName"]: f for f in graphsim.mailbox(ALICE).folders()}
    for folder in folders.value:
        assert isinstance(folder, MailFolder)
        assert folder.total_item_count == truth[folder.display_name]["totalItemCount"]
        assert folder.unread_item_count == truth[folder.display_name]["unreadItemCount"]
        assert folder.child_folder_count == truth[folder.display_name]["childFolderCount"]
        assert folder.is_hidden is False
        assert not folder.additional_data  # every field we send is a known mailFolder property

    delta = _parse(s.get(f"{users_url(graphsim, ALICE)}/mailFolders/drafts/messages/delta",
                         headers={"Prefer": "odata.maxpagesize=1000"}),
                   DeltaGetResponse)
    assert delta.odata_delta_link and delta.odata_next_link is None
    assert len(delta.value) == graphsim.mailbox(ALICE).count("drafts")


def test_attachments_parse_as_file_attachments_with_sizes(graphsim):
    s = graphsim.session()
    mbx = graphsim.mailbox(ALICE)
    message_id = next(m["id"] for m in mbx.messages(fields=["id"]) if mbx.attachments(m["id"]))
    expected = mbx.attachments(message_id)
    parsed = _parse(s.get(f"{users_url(graphsim, ALICE)}/messages/{message_id}/attachments"),
                    AttachmentCollectionResponse)
    assert [a.size for a in parsed.value] == [a["size"] for a in expected]
    assert [a.name for a in parsed.value] == [a["name"] for a in expected]
    for attachment in parsed.value:
        assert not (attachment.additional_data or {}).keys() - {"@odata.mediaContentType"}
        if isinstance(attachment, FileAttachment) and attachment.size <= 3 * 1024 * 1024:
            assert len(attachment.content_bytes) == attachment.size
