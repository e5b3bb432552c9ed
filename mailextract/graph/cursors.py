"""Resumable paging cursors: small JSON-serialisable dicts an orchestrator can store.

Why: an extraction stops and resumes across activities, processes and days. A cursor holds
either the start request (folder, query options) or Graph's ``@odata.nextLink`` /
``@odata.deltaLink`` exactly as received: links are opaque and ``$skip``/``$skiptoken`` are never
edited (reference/graph-mail.md "Listing and paging"). Preferences sent in the ``Prefer`` header
(body format, delta page size) are not part of the links, so the cursor stores them and every
resumed request re-applies them. Cursors never hold tokens or secrets, only ids, options and
Graph's links.

Shapes (``v`` is the format version)::

    {"v": 1, "kind": "messages", "folder_id": None | str, "body_type": "html" | "text",
     "query": {"$select": ..., "$top": ..., "$filter": ..., "$orderby": ...}, "next_link": None | str}
    {"v": 1, "kind": "delta", "folder_id": str, "body_type": ..., "page_size": int,
     "query": {"$select": ..., "$filter": ...}, "next_link": None | str, "delta_link": None | str}
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from mailextract.errors import InvalidRequest
from mailextract.graph import query as q

VERSION = 1

# A listing-friendly default: everything an index row and a stored body need, no heavy extras.
DEFAULT_MESSAGE_SELECT: tuple[str, ...] = (
    "id",
    "parentFolderId",
    "conversationId",
    "internetMessageId",
    "subject",
    "from",
    "sender",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "receivedDateTime",
    "sentDateTime",
    "lastModifiedDateTime",
    "hasAttachments",
    "importance",
    "isRead",
    "isDraft",
    "categories",
    "bodyPreview",
    "body",
)


def messages_cursor(
    folder_id: str | None = None,
    *,
    received_after: datetime | None = None,
    received_before: datetime | None = None,
    select: Iterable[str] | str | None = DEFAULT_MESSAGE_SELECT,
    top: int | None = None,
    orderby: str | None = None,
    body_type: str = "html",
) -> dict[str, Any]:
    """Start cursor of a message listing: the whole mailbox (``folder_id=None``) or one folder.

    ``top`` left None means the client's ``GRAPH_PAGE_SIZE``.
    """
    if folder_id is not None:
        q.segment(folder_id, "folder_id")
    query: dict[str, str] = {}
    _put(query, "$select", q.select_clause(select))
    if top is not None:
        query["$top"] = str(q.top_value(top))
    _put(query, "$filter", q.received_filter(received_after, received_before))
    _put(query, "$orderby", q.orderby_clause(orderby))
    return {"v": VERSION, "kind": "messages", "folder_id": folder_id, "body_type": q.body_type_value(body_type),
            "query": query, "next_link": None}


def delta_cursor(
    folder_id: str,
    *,
    delta_link: str | None = None,
    received_after: datetime | None = None,
    select: Iterable[str] | str | None = DEFAULT_MESSAGE_SELECT,
    page_size: int = 100,
    body_type: str = "html",
) -> dict[str, Any]:
    """Start cursor of a delta round for one folder: fresh, or from a saved ``deltaLink``.

    With ``delta_link`` the query options are already inside the link (graph-mail.md "Delta":
    store the whole deltaLink); only the ``Prefer`` options given here are re-applied.
    ``received_after`` maps to the one filter delta supports (``receivedDateTime ge``).
    """
    q.segment(folder_id, "folder_id")
    query: dict[str, str] = {}
    if delta_link is None:
        _put(query, "$select", q.select_clause(select))
        _put(query, "$filter", q.received_filter(received_after, None))
    elif not isinstance(delta_link, str) or not delta_link.startswith("https://"):
        raise InvalidRequest("delta_link must be the https deltaLink Graph returned", field="delta_link")
    return {"v": VERSION, "kind": "delta", "folder_id": folder_id, "body_type": q.body_type_value(body_type),
            "page_size": q.top_value(page_size), "query": query, "next_link": None, "delta_link": delta_link}


def with_next_link(cursor: dict[str, Any], next_link: str) -> dict[str, Any]:
    """The cursor for the page behind ``next_link`` (kept verbatim), preferences carried over."""
    nxt = dict(cursor)
    nxt["query"] = {}
    nxt["next_link"] = next_link
    if nxt["kind"] == "delta":
        nxt["delta_link"] = None
    return nxt


def validate(cursor: Any, kind: str) -> dict[str, Any]:
    """Check a cursor loaded from storage before using it; raise ``InvalidRequest`` if malformed."""
    if not isinstance(cursor, dict):
        raise InvalidRequest("cursor must be an object", field="cursor")
    if cursor.get("v") != VERSION:
        raise InvalidRequest(f"unsupported cursor version {cursor.get('v')!r}", field="cursor")
    if cursor.get("kind") != kind:
        raise InvalidRequest(f"expected a {kind} cursor, got {cursor.get('kind')!r}", field="cursor")
    q.body_type_value(cursor.get("body_type"))
    folder_id = cursor.get("folder_id")
    if folder_id is not None or kind == "delta":
        q.segment(folder_id, "folder_id")
    query = cursor.get("query")
    if not isinstance(query, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in query.items()):
        raise InvalidRequest("cursor query must map strings to strings", field="cursor")
    links = [cursor.get("next_link")] + ([cursor.get("delta_link")] if kind == "delta" else [])
    if any(link is not None and not isinstance(link, str) for link in links):
        raise InvalidRequest("cursor links must be strings", field="cursor")
    if kind == "delta":
        q.top_value(cursor.get("page_size"))
        if cursor.get("next_link") and cursor.get("delta_link"):
            raise InvalidRequest("a delta cursor holds a nextLink or a deltaLink, not both", field="cursor")
    return cursor


def _put(query: dict[str, str], key: str, value: str | None) -> None:
    if value is not None:
        query[key] = value
