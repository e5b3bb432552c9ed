"""The mail reads: folders, message pages, folder delta, attachments, MIME.

Why one module: every Graph mail URL of the project is built here, so a reader finds any Graph
call in one place (DESIGN.md). Each function does one request (or, for folders, walks the tree)
through ``GraphTransport``, which owns retries, limits and error types.
"""

from __future__ import annotations

from collections import deque
from typing import Any, BinaryIO

from mailextract.errors import DeltaExpired, GraphError, InvalidRequest, MailboxNotFound
from mailextract.graph import cursors
from mailextract.graph import query as q
from mailextract.graph.models import Attachment, DeltaPage, MailFolder, MessagePage, RemovedItem
from mailextract.graph.transport import GraphTransport

FOLDER_SELECT = "id,displayName,parentFolderId,childFolderCount,totalItemCount,unreadItemCount"
FOLDER_PAGE_SIZE = 100
ATTACHMENT_SELECT = "id,name,contentType,size,isInline,lastModifiedDateTime"
_ATTACHMENT_KINDS = {
    "#microsoft.graph.fileattachment": "file",
    "#microsoft.graph.itemattachment": "item",
    "#microsoft.graph.referenceattachment": "reference",
}


# ---------------------------------------------------------------------------------- folders
def list_folders(transport: GraphTransport, upn: str) -> list[MailFolder]:
    """All mail folders of a mailbox, parents before children (siblings by name), hidden ones and
    what lies below them left out.

    Why delta: one `mailFolders/delta` round returns the whole tree, nested folders included, in
    one request for most mailboxes, where listing `childFolders` takes a request per folder that
    has children and one round trip per level, before any message can be read. The round is
    checked against each folder's childFolderCount: a folder with children the round did not
    return has them listed level by level, so a round that holds less than the whole tree loses
    no folder. Where Graph does not offer the round (21Vianet) or refuses it (a mailbox at its
    storage quota answers 403 ErrorQuotaExceeded: Graph's "mailFolder: delta" page), every level
    is listed. The round's deltaLink is not kept: every run lists the folders afresh.
    """
    root = q.user_path(upn)
    try:
        found = [raw for raw in _all_pages(transport, transport.url(f"{root}/mailFolders/delta"), upn,
                                           {"$select": f"{FOLDER_SELECT},isHidden"},
                                           prefer=(q.max_page_size_preference(FOLDER_PAGE_SIZE),))
                 if "@removed" not in raw]
    except GraphError as exc:
        if not _without_folder_delta(exc):
            raise
        return _list_folders_by_level(transport, upn, [(f"{root}/mailFolders", None, "")], set())
    folders, incomplete = _folder_tree(found)
    listings = [(_child_folders_path(root, folder.id), folder.id, folder.path) for folder in incomplete]
    return folders + _list_folders_by_level(transport, upn, listings, {str(raw["id"]) for raw in found})


def _without_folder_delta(exc: GraphError) -> bool:
    quota = exc.status == 403 and exc.graph_code == "ErrorQuotaExceeded"
    return quota or (exc.status in (400, 404) and not isinstance(exc, MailboxNotFound))


def _folder_tree(found: list[dict[str, Any]]) -> tuple[list[MailFolder], list[MailFolder]]:
    """The visible folders of a delta round (any order, maybe repeated) as the listing gives them,
    and those of them with more children (childFolderCount, or none given) than the round holds."""
    by_id = {str(raw["id"]): raw for raw in found}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for raw in by_id.values():
        parent = raw.get("parentFolderId")
        children.setdefault(parent if parent in by_id else None, []).append(raw)
    for siblings in children.values():
        siblings.sort(key=lambda raw: (str(raw.get("displayName") or "").lower(), str(raw["id"])))
    result: list[MailFolder] = []
    incomplete: list[MailFolder] = []
    pending: deque[tuple[dict[str, Any], str]] = deque((raw, "") for raw in children.get(None, []))
    while pending:
        raw, parent_path = pending.popleft()
        if raw.get("isHidden"):
            continue
        folder = _mail_folder(raw, None, parent_path)
        result.append(folder)
        kids = children.get(folder.id, [])
        if _more_children_than(raw, len(kids)):
            incomplete.append(folder)
        pending.extend((child, folder.path) for child in kids)
    return result, incomplete


def _list_folders_by_level(transport: GraphTransport, upn: str, pending: list[tuple[str, str | None, str]],
                           known: set[str]) -> list[MailFolder]:
    """Folders listed level by level from `pending` (listing path, parent id, parent path),
    leaving out the `known` ones and what lies below them (known already)."""
    root = q.user_path(upn)
    result: list[MailFolder] = []
    queue = deque(pending)
    while queue:
        path, parent_id, parent_path = queue.popleft()
        for raw in _all_pages(transport, transport.url(path), upn,
                              {"$select": FOLDER_SELECT, "$top": str(FOLDER_PAGE_SIZE)}):
            if str(raw["id"]) in known:
                continue
            folder = _mail_folder(raw, parent_id, parent_path)
            result.append(folder)
            if _more_children_than(raw, 0):  # childFolderCount saves one request per leaf
                queue.append((_child_folders_path(root, folder.id), folder.id, folder.path))
    return result


def _more_children_than(raw: dict[str, Any], known: int) -> bool:
    """The folder has more child folders than `known`, by its childFolderCount; without one, ask."""
    return raw.get("childFolderCount") is None or int(raw["childFolderCount"]) > known


def _child_folders_path(root: str, folder_id: str) -> str:
    return f"{root}/mailFolders/{q.segment(folder_id, 'folder_id')}/childFolders"


def _mail_folder(raw: dict[str, Any], parent_id: str | None, parent_path: str) -> MailFolder:
    name = str(raw.get("displayName") or "")
    return MailFolder(
        id=str(raw["id"]),
        display_name=name,
        parent_id=raw.get("parentFolderId") or parent_id,
        path=f"{parent_path}/{name}" if parent_path else name,
        total_count=None if raw.get("totalItemCount") is None else int(raw["totalItemCount"]),
        unread_count=int(raw.get("unreadItemCount") or 0),
        child_folder_count=int(raw.get("childFolderCount") or 0),
    )


def _all_pages(transport: GraphTransport, url: str, upn: str, params: dict[str, str] | None,
               prefer: tuple[str, ...] = ()):
    while url:
        payload = transport.get_json(url, mailbox=upn, params=params, prefer=prefer)
        yield from _values(payload, url)
        url = payload.get("@odata.nextLink")
        params = None  # the nextLink already holds the query
        if url:
            transport.check_own_url(url)


# ---------------------------------------------------------------------------------- messages
def list_messages_page(transport: GraphTransport, upn: str, cursor: dict[str, Any], *,
                       default_top: int) -> MessagePage:
    """One page of messages for a cursor from ``cursors.messages_cursor`` or a previous page."""
    cursors.validate(cursor, "messages")
    prefer = [q.body_preference(cursor["body_type"])]
    if cursor["next_link"]:
        url = cursor["next_link"]
        transport.check_own_url(url)
        params = None
    else:
        folder = cursor["folder_id"]
        path = q.user_path(upn) + (f"/mailFolders/{q.segment(folder, 'folder_id')}/messages" if folder else "/messages")
        url = transport.url(path)
        params = dict(cursor["query"])
        params.setdefault("$top", str(q.top_value(default_top)))
    payload = transport.get_json(url, mailbox=upn, params=params, prefer=prefer)
    items = _values(payload, url)
    next_link = payload.get("@odata.nextLink")
    if next_link:
        transport.check_own_url(next_link)
    return MessagePage(items=items, next_cursor=cursors.with_next_link(cursor, next_link) if next_link else None)


def get_message(transport: GraphTransport, upn: str, message_id: str, *, select: Any = None,
                body_type: str = "html") -> dict[str, Any]:
    url = transport.url(f"{q.user_path(upn)}/messages/{q.segment(message_id, 'message_id')}")
    params = {"$select": q.select_clause(select)} if select is not None else None
    return transport.get_json(url, mailbox=upn, params=params, prefer=[q.body_preference(body_type)])


# ---------------------------------------------------------------------------------- delta
def delta_page(transport: GraphTransport, upn: str, folder_id: str, cursor: dict[str, Any]) -> DeltaPage:
    """One page of a folder's delta round (graph-mail.md "Delta").

    Follows the cursor's nextLink, or its saved deltaLink, or starts a fresh round. ``@removed``
    entries come back in ``removed``; the same item may appear twice in a round (upsert).
    """
    cursors.validate(cursor, "delta")
    if cursor["folder_id"] != folder_id:
        raise InvalidRequest("the delta cursor belongs to another folder", field="cursor")
    prefer = [q.body_preference(cursor["body_type"]), q.max_page_size_preference(cursor["page_size"])]
    link = cursor["next_link"] or cursor["delta_link"]
    if link:
        transport.check_own_url(link)
        url, params = link, None
    else:
        url = transport.url(f"{q.user_path(upn)}/mailFolders/{q.segment(folder_id, 'folder_id')}/messages/delta")
        params = dict(cursor["query"]) or None
    try:
        payload = transport.get_json(url, mailbox=upn, params=params, prefer=prefer)
    except DeltaExpired as exc:
        exc.folder_id = folder_id
        raise
    items: list[dict[str, Any]] = []
    removed: list[RemovedItem] = []
    for entry in _values(payload, url):
        marker = entry.get("@removed")
        if marker is not None:
            reason = marker.get("reason") if isinstance(marker, dict) else None
            removed.append(RemovedItem(id=str(entry.get("id")), reason=str(reason or "deleted")))
        else:
            items.append(entry)
    next_link = payload.get("@odata.nextLink")
    delta_link = payload.get("@odata.deltaLink")
    for found in (next_link, delta_link):
        if found:
            transport.check_own_url(found)
    if next_link:
        return DeltaPage(items, removed, cursors.with_next_link(cursor, next_link), None)
    if delta_link:
        next_round = dict(cursor, query={}, next_link=None, delta_link=delta_link)
        return DeltaPage(items, removed, None, delta_link, next_round)
    raise GraphError(status=200, graph_message="delta answer has neither @odata.nextLink nor @odata.deltaLink",
                     mailbox=upn, call=f"GET {url.split('?')[0]}")


# ---------------------------------------------------------------------------------- attachments
def list_attachments(transport: GraphTransport, upn: str, message_id: str) -> list[Attachment]:
    """Metadata of a message's attachments (content via ``download_attachment``)."""
    url = transport.url(f"{q.user_path(upn)}/messages/{q.segment(message_id, 'message_id')}/attachments")
    result = []
    for raw in _all_pages(transport, url, upn, {"$select": ATTACHMENT_SELECT}):
        odata_type = str(raw.get("@odata.type") or "").lower()
        result.append(Attachment(
            id=str(raw["id"]),
            name=raw.get("name"),
            content_type=raw.get("contentType"),
            size=int(raw.get("size") or 0),
            is_inline=bool(raw.get("isInline")),
            kind=_ATTACHMENT_KINDS.get(odata_type, "file" if not odata_type else odata_type.rsplit(".", 1)[-1]),
            last_modified=raw.get("lastModifiedDateTime"),
            raw={k: v for k, v in raw.items() if k != "contentBytes"},
        ))
    return result


def download_attachment(transport: GraphTransport, upn: str, message_id: str, attachment_id: str,
                        sink: BinaryIO) -> int:
    """Raw attachment bytes via ``/$value`` into ``sink`` (works past the ~3 MB contentBytes limit)."""
    url = transport.url(f"{q.user_path(upn)}/messages/{q.segment(message_id, 'message_id')}"
                        f"/attachments/{q.segment(attachment_id, 'attachment_id')}/$value")
    return transport.download(url, sink, mailbox=upn)


def download_mime(transport: GraphTransport, upn: str, message_id: str, sink: BinaryIO) -> int:
    """The full MIME of a message (``/messages/{id}/$value``) into ``sink``."""
    url = transport.url(f"{q.user_path(upn)}/messages/{q.segment(message_id, 'message_id')}/$value")
    return transport.download(url, sink, mailbox=upn)


def _values(payload: dict[str, Any], url: str) -> list[dict[str, Any]]:
    values = payload.get("value")
    if not isinstance(values, list) or not all(isinstance(v, dict) for v in values):
        raise GraphError(status=200, graph_message="answer has no 'value' list", call=f"GET {url.split('?')[0]}")
    return values
