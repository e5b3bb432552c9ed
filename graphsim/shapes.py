"""Graph JSON shapes: message, mailFolder, attachment, collections and error bodies.

Why: the point of the simulator is that client code written against it works unchanged against
Microsoft Graph, so field names, types, nesting and formats (e.g. `2024-05-01T10:00:00Z` dates,
`{"emailAddress": {"name", "address"}}` recipients, `@odata.*` annotations) follow what Graph
returns; tests parse these shapes with msgraph-sdk's own models to keep them honest.
"""
from __future__ import annotations

import base64
import hashlib
import struct
import time
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from . import content

MESSAGE_FIELDS = [
    "createdDateTime", "lastModifiedDateTime", "changeKey", "categories", "receivedDateTime",
    "sentDateTime", "hasAttachments", "internetMessageId", "subject", "bodyPreview", "importance",
    "parentFolderId", "conversationId", "conversationIndex", "isDeliveryReceiptRequested",
    "isReadReceiptRequested", "isRead", "isDraft", "webLink", "inferenceClassification", "body",
    "sender", "from", "toRecipients", "ccRecipients", "bccRecipients", "replyTo", "flag",
]
SELECTABLE_ONLY = ["uniqueBody"]  # not in the default set, but selectable
SELECTABLE = {n.lower(): n for n in ["id", *MESSAGE_FIELDS, *SELECTABLE_ONLY]}
CHEAP_FIELDS = frozenset({"id", "parentFolderId", "receivedDateTime", "isRead", "changeKey",
                          "lastModifiedDateTime", "createdDateTime"})
JSON_CONTENT_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def change_key(mbx, key: int, version: int) -> str:
    raw = b"\x09\x00\x00\x00\x16\x00\x00\x00" + mbx.tag + struct.pack(">II", key, version)
    return base64.b64encode(raw).decode("ascii")


def _conversation_index(mbx, view) -> str:
    root_ts = mbx.received(view.conversation) if mbx.exists(view.conversation) else view.received
    filetime = (int(root_ts) + 11644473600) * 10_000_000
    head = b"\x01" + struct.pack(">Q", filetime)[1:6]
    guid = hashlib.blake2b(f"{mbx.upn}|{view.conversation}".encode(), digest_size=16).digest()
    tail = b"" if view.conversation == view.key else struct.pack(">I", view.key & 0xFFFFFFFF) + b"\x00"
    return base64.b64encode(head + guid + tail).decode("ascii")


def _recipients(people) -> list[dict]:
    return [p.as_graph() for p in people]


def message_json(mbx, view, select: list[str] | None, body_type: str, immutable: bool) -> dict:
    """A message as Graph returns it; `select` is a list of canonical names or None (default set)."""
    c = view.content
    mid = mbx.message_id(view.key, immutable=immutable, folder=view.folder)
    ck = change_key(mbx, view.key, view.version)
    names = MESSAGE_FIELDS if select is None else [n for n in [*MESSAGE_FIELDS, *SELECTABLE_ONLY] if n in select]
    out: dict[str, Any] = {"@odata.etag": f'W/"{ck}"', "id": mid}
    for name in names:
        if name == "createdDateTime":
            out[name] = iso(view.created)
        elif name == "lastModifiedDateTime":
            out[name] = iso(view.modified)
        elif name == "changeKey":
            out[name] = ck
        elif name == "categories":
            out[name] = list(c.categories)
        elif name == "receivedDateTime":
            out[name] = iso(view.received)
        elif name == "sentDateTime":
            out[name] = iso(view.received - c.sent_offset)
        elif name == "hasAttachments":
            out[name] = any(not a.is_inline for a in c.attachments)
        elif name == "internetMessageId":
            out[name] = c.internet_message_id
        elif name == "subject":
            out[name] = c.subject
        elif name == "bodyPreview":
            out[name] = content.preview(c.body)
        elif name == "importance":
            out[name] = c.importance
        elif name == "parentFolderId":
            out[name] = mbx.folder_id(view.folder)
        elif name == "conversationId":
            out[name] = mbx.conversation_id(view.conversation)
        elif name == "conversationIndex":
            out[name] = _conversation_index(mbx, view)
        elif name == "isDeliveryReceiptRequested":
            out[name] = c.delivery_receipt
        elif name == "isReadReceiptRequested":
            out[name] = c.read_receipt
        elif name == "isRead":
            out[name] = c.is_read
        elif name == "isDraft":
            out[name] = c.is_draft
        elif name == "webLink":
            out[name] = ("https://outlook.office365.com/owa/?ItemID=" + quote(mid, safe="")
                         + "&exvsurl=1&viewmodel=ReadMessageItem")
        elif name == "inferenceClassification":
            out[name] = c.inference
        elif name in ("body", "uniqueBody"):
            if body_type == "text":
                out[name] = {"contentType": "text", "content": content.render_text(c.body)}
            else:
                out[name] = {"contentType": "html", "content": content.render_html(c.body)}
        elif name in ("sender", "from"):
            out[name] = c.sender.as_graph()
        elif name == "toRecipients":
            out[name] = _recipients(c.to)
        elif name == "ccRecipients":
            out[name] = _recipients(c.cc)
        elif name == "bccRecipients":
            out[name] = _recipients(c.bcc)
        elif name == "replyTo":
            out[name] = _recipients(c.reply_to)
        elif name == "flag":
            out[name] = {"flagStatus": c.flag}
    return out


def cheap_message_json(mbx, key: int, wanted: set[str], immutable: bool) -> dict:
    """Truth fields that need no content generation (for very large mailboxes)."""
    folder = mbx.folder_of(key)
    out: dict[str, Any] = {"id": mbx.message_id(key, immutable=immutable, folder=folder)}
    if "createdDateTime" in wanted:
        out["createdDateTime"] = iso(mbx.created(key))
    if "lastModifiedDateTime" in wanted:
        out["lastModifiedDateTime"] = iso(mbx.modified(key))
    if "changeKey" in wanted:
        out["changeKey"] = change_key(mbx, key, mbx.version(key))
    if "receivedDateTime" in wanted:
        out["receivedDateTime"] = iso(mbx.received(key))
    if "parentFolderId" in wanted:
        out["parentFolderId"] = mbx.folder_id(folder)
    if "isRead" in wanted:
        out["isRead"] = mbx.is_read(key)
    return out


def folder_json(mbx, folder) -> dict:
    parent = folder.parent if folder.parent is not None else 0
    return {
        "id": mbx.folder_id(folder.num),
        "displayName": folder.display_name,
        "parentFolderId": mbx.folder_id(parent) if folder.parent is not None else mbx.folder_id(0),
        "childFolderCount": len(mbx.children(folder.num)),
        "unreadItemCount": mbx.unread(folder.num),
        "totalItemCount": mbx.total(folder.num),
        "isHidden": folder.hidden,
    }


def attachment_json(mbx, view, index: int, spec: content.AttachmentSpec, include_content: bool) -> dict:
    modified = iso(spec.last_modified or view.created)
    aid = mbx.attachment_id(view.key, index)
    if spec.kind == "item":
        return {"@odata.type": "#microsoft.graph.itemAttachment", "id": aid, "lastModifiedDateTime": modified,
                "name": spec.name, "contentType": spec.content_type, "size": spec.size, "isInline": spec.is_inline}
    out = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "@odata.mediaContentType": spec.content_type,
        "id": aid,
        "lastModifiedDateTime": modified,
        "name": spec.name,
        "contentType": spec.content_type,
        "size": spec.size,
        "isInline": spec.is_inline,
        "contentId": spec.content_id,
        "contentLocation": None,
    }
    if include_content and spec.size <= content.ATTACHMENT_INLINE_LIMIT:
        out["contentBytes"] = base64.b64encode(content.attachment_bytes(spec)).decode("ascii")
    return out


def error_body(code: str, message: str, client_request_id: str | None = None,
               request_id: str | None = None) -> dict:
    request_id = request_id or str(uuid.uuid4())
    return {"error": {"code": code, "message": message, "innerError": {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
        "request-id": request_id,
        "client-request-id": client_request_id or request_id,
    }}}
