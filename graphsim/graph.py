"""Microsoft Graph v1.0 mail endpoints: folders, messages, MIME, attachments, per-folder delta.

Why: these are the calls an Outlook extraction makes. Each request goes through the same gate as
in Exchange Online, in this order: bearer token (401), user and mailbox (404), permission and
per-mailbox denial (403), throttling per app and mailbox (429), injected faults (503/504/reset),
then the route itself, with latency applied while the request holds its concurrency slot.

Routing is done here by hand, not by aiohttp's router, because Graph path segments are
case-insensitive (`mailFolders` = `mailfolders`) and unknown segments must answer in Graph's
error shape.
"""
from __future__ import annotations

import asyncio
import bisect
import json
import socket
import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import Iterable
from urllib.parse import quote, unquote, urlencode

from aiohttp import web

from . import content, ids, mime, odata, shapes
from .entra import MAIL_READ_ROLES, TokenError
from .mailbox import Mailbox, NotFound

DELTA_DEFAULT_PAGE = 10
FOLDER_DEFAULT_TOP = 10
USER_READ_ROLES = frozenset({"User.Read.All", "User.ReadBasic.All", "Directory.Read.All"})
ATTACHMENT_FIELDS = {n.lower(): n for n in ["id", "lastModifiedDateTime", "name", "contentType", "size", "isInline",
                                            "contentId", "contentLocation", "contentBytes"]}


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def bad_segment(segment: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")


@dataclass
class Reply:
    status: int = 200
    body: dict | None = None
    chunks: Iterable[bytes] | None = None
    content_type: str = shapes.JSON_CONTENT_TYPE
    length: int | None = None
    headers: dict = field(default_factory=dict)
    items: int = 0  # returned items charged latency_per_item_ms (messages with their body, folders, downloads)
    bodyless: int = 0  # messages returned with content but no body, charged latency_per_bodyless_item_ms
    encoded: bytes | None = None  # `body` as sent, when it was encoded before the reply's latency


@dataclass
class Call:
    """What a route needs to know about the request it serves."""
    sim: object
    request: web.Request
    mbx: Mailbox
    user_segment: str
    base: str
    query: odata.ListQuery | None
    prefs: odata.Preferences


# ------------------------------------------------------------------------------ entry point

async def handle(sim, request: web.Request) -> web.StreamResponse:
    request_id = str(uuid.uuid4())
    client_request_id = request.headers.get("client-request-id") or request_id
    common = {"request-id": request_id, "client-request-id": client_request_id, "OData-Version": "4.0",
              "x-ms-ags-diagnostic": '{"ServerInfo":{"DataCenter":"graphsim","Slice":"E","Ring":"0",'
                                     '"ScaleUnit":"000","RoleInstance":"graphsim"}}'}
    sim.stats.bump("requests")
    admitted = None
    try:
        try:
            mbx, segments, token = _authenticate(sim, request)
            sim.stats.bump_map("requests_by_mailbox", mbx.upn)
            _authorize(sim, mbx, segments, token)
            throttled = sim.faults.admit(token.client_id, mbx.upn)
            if throttled is not None:
                sim.stats.bump("throttled_429")
                sim.stats.bump_map("throttled_by_mailbox", mbx.upn)
                sim.stats.bump_map("throttled_by_reason", throttled.reason)
                raise GraphError(429, "ApplicationThrottled",
                                 f"Application is over its {throttled.reason} limit.",
                                 {"Retry-After": str(throttled.retry_after)})
            admitted = (token.client_id, mbx.upn)
            admitted_at = time.monotonic()
            fault = sim.faults.draw(request.method, _fault_key(request))
            if fault == "reset":
                sim.stats.bump("injected_resets")
                return _reset(request)
            if fault in ("503", "504"):
                sim.stats.bump("injected_errors")
                await asyncio.sleep(sim.faults.latency_s(0))
                raise (GraphError(503, "ServiceNotAvailable", "The service is temporarily unavailable. Please retry.")
                       if fault == "503" else GraphError(504, "GatewayTimeout",
                                                         "The gateway did not receive a response in time."))
            # Off the event loop: a page of 1000 full messages takes a while to build, and other
            # requests (to other mailboxes, or throttled ones) must keep being answered meanwhile.
            reply = await asyncio.get_running_loop().run_in_executor(None, _prepare, sim, request, mbx, segments)
            # The configured latency is the request's whole time at the server, as a client sees
            # Graph's: the simulator's own work building the answer counts toward it instead of
            # adding to it (that work varies with the load of the machine it shares with a client).
            delay = sim.faults.latency_s(reply.items, reply.bodyless) - (time.monotonic() - admitted_at)
            if delay > 0:
                await asyncio.sleep(delay)
        except GraphError as e:
            reply = Reply(status=e.status, headers=dict(e.headers),
                          body=shapes.error_body(e.code, e.message, client_request_id, request_id))
            if e.status == 401:
                reply.headers["WWW-Authenticate"] = (
                    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
                    'client_id="00000003-0000-0000-c000-000000000000"')
            if e.status == 410:
                sim.stats.bump("delta_gone_410")
        sim.stats.bump_map("status_counts", str(reply.status))
        return await _write(sim, request, reply, common)
    finally:
        if admitted:
            sim.faults.release(*admitted)


def _fault_key(request: web.Request) -> str:
    """The request's identity for fault draws: path and query, with the issue time inside delta tokens
    left out so that a replayed sequence of requests draws the same faults."""
    parts = []
    for name, value in sorted(request.rel_url.query.items()):
        if name.lower() in ("$skiptoken", "$deltatoken"):
            state = odata.decode_token(value)
            if state is not None:
                state.pop("i", None)
                value = odata.encode_token(state)
        parts.append(f"{name}={value}")
    return request.rel_url.raw_path + "?" + "&".join(parts)


def _reset(request: web.Request) -> web.StreamResponse:
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        transport.abort()
    raise asyncio.CancelledError()


async def _write(sim, request: web.Request, reply: Reply, common: dict) -> web.StreamResponse:
    headers = {**common, **reply.headers}
    if reply.body is not None:
        data = reply.encoded if reply.encoded is not None else _encode(reply.body)
        return web.Response(status=reply.status, body=data, headers={**headers, "Content-Type": reply.content_type})
    response = web.StreamResponse(status=reply.status, headers={**headers, "Content-Type": reply.content_type})
    if reply.length is not None:
        response.content_length = reply.length
    else:
        response.enable_chunked_encoding()
    await response.prepare(request)
    sent = 0
    try:
        for chunk in reply.chunks or ():
            await response.write(chunk)
            sent += len(chunk)
        await response.write_eof()
    except ConnectionError:  # the client went away mid-stream: nothing left to tell it
        pass
    sim.stats.bump("bytes_streamed", sent)
    return response


# ------------------------------------------------------------------------------ gate

def _authenticate(sim, request: web.Request):
    header = request.headers.get("Authorization", "")
    raw = header[7:].strip() if header.lower().startswith("bearer ") else ""
    try:
        token = sim.tokens.open(raw)
    except TokenError as e:
        raise GraphError(401, "InvalidAuthenticationToken", e.message)
    segments = [unquote(s) for s in request.rel_url.raw_path.split("/")[2:]]
    if segments and segments[-1] == "":
        segments.pop()
    if request.method not in ("GET", "HEAD"):
        raise GraphError(405, "Request_BadRequest",
                         f"graphsim serves read-only mail endpoints; {request.method} is not simulated.")
    if not segments:
        raise GraphError(400, "BadRequest", "Invalid request.")
    first = segments[0].lower()
    if first == "me":
        raise GraphError(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
    if first != "users":
        raise bad_segment(segments[0])
    if len(segments) < 2:
        raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
    user = segments[1]
    mbx = sim.find_mailbox(token.tenant_id, user)
    if mbx is None:
        if sim.has_user_without_mailbox(token.tenant_id, user):
            raise GraphError(404, "MailboxNotEnabledForRESTAPI",
                             "The mailbox is either inactive, soft-deleted, or is hosted on-premise.")
        raise GraphError(404, "ResourceNotFound", "User not found")
    return mbx, segments, token


def _authorize(sim, mbx: Mailbox, segments: list[str], token) -> None:
    wants_user_only = len(segments) == 2
    allowed_roles = USER_READ_ROLES if wants_user_only else MAIL_READ_ROLES
    if not (token.roles & allowed_roles) or sim.directory.is_denied(token.client_id, mbx.upn):
        if wants_user_only:
            raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")


# ------------------------------------------------------------------------------ routing

def _encode(body: dict) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _prepare(sim, request: web.Request, mbx: Mailbox, segments: list[str]) -> Reply:
    """The reply to a Graph request, its JSON body already encoded (work done within its latency)."""
    reply = _dispatch(sim, request, mbx, segments)
    if reply.body is not None:
        reply.encoded = _encode(reply.body)
    return reply


def _dispatch(sim, request: web.Request, mbx: Mailbox, segments: list[str]) -> Reply:
    prefs = odata.parse_prefer(request.headers.getall("Prefer", []))
    call = Call(sim, request, mbx, segments[1], f"https://{request.host}", None, prefs)
    rest = segments[2:]
    low = [s.lower() for s in rest]
    params = request.rel_url.query
    try:
        if not rest:
            return _user(call)
        if low[0] == "mailfolders":
            if len(rest) == 1:
                call.query = odata.parse_list_query(params, default_top=FOLDER_DEFAULT_TOP, for_messages=False)
                return _folder_list(call, 0, f"users('{_q(call.user_segment)}')/mailFolders")
            if low[1] == "delta" and len(rest) == 2:
                call.query = odata.parse_list_query(params, default_top=None, for_messages=False, delta=True)
                return _folder_delta(call)
            folder = _folder(mbx, rest[1])
            if len(rest) == 2:
                return _folder_entity(call, folder)
            if low[2] == "childfolders":
                if len(rest) == 3:
                    call.query = odata.parse_list_query(params, default_top=FOLDER_DEFAULT_TOP, for_messages=False)
                    return _folder_list(call, folder, f"users('{_q(call.user_segment)}')/mailFolders('{_q(rest[1])}')"
                                                      "/childFolders")
                child = _folder(mbx, rest[3])
                if mbx.folder(child).parent != folder:
                    raise not_found()
                if len(rest) == 4:
                    return _folder_entity(call, child)
                folder, rest, low = child, rest[2:], low[2:]
            if low[2] != "messages":
                raise bad_segment(rest[2])
            if len(rest) == 3:
                call.query = odata.parse_list_query(params)
                context = f"users('{_q(call.user_segment)}')/mailFolders('{_q(rest[1])}')/messages"
                return _message_list(call, folder, context)
            if low[3] == "delta" and len(rest) == 4:
                call.query = odata.parse_list_query(params, default_top=None, delta=True)
                return _delta(call, folder)
            return _message_routes(call, rest[3:])
        if low[0] == "messages":
            if len(rest) == 1:
                call.query = odata.parse_list_query(params)
                return _message_list(call, None, f"users('{_q(call.user_segment)}')/messages")
            if low[1] == "delta":
                raise GraphError(400, "ErrorInvalidUrlQuery",
                                 "Delta for messages is available per folder only: use mailFolders/{id}/messages/delta.")
            return _message_routes(call, rest[1:])
        raise bad_segment(rest[0])
    except odata.QueryError as e:
        raise GraphError(e.status, e.code, e.message)
    except NotFound:
        raise not_found()


def _q(text: str) -> str:
    return quote(text, safe="@.-_")


def _folder(mbx: Mailbox, ref: str) -> int:
    if ref.lower() not in _well_known_lower() and ids.decode(ref) is None:
        raise GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.")
    try:
        return mbx.resolve_folder(ref)
    except NotFound:
        raise not_found()


def _well_known_lower() -> frozenset[str]:
    from .mailbox import WELL_KNOWN_NAMES
    return WELL_KNOWN_NAMES


def _message_key(mbx: Mailbox, ref: str) -> int:
    if ids.decode(ref) is None:
        raise GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.")
    return mbx.resolve_message(ref)


# Fields that cost Exchange next to nothing to return: a page of only these (an ids-only delta
# round, say) gets no per-item latency, as real Graph answers such pages fast.
_CHEAP_FIELDS = frozenset({"id", "changeKey", "receivedDateTime", "parentFolderId", "lastModifiedDateTime",
                           "@removed"})


def _content_items(values: list[dict]) -> tuple[int, int]:
    """How many returned messages carry content: with their body (latency_per_item_ms each), and
    without it (latency_per_bodyless_item_ms each)."""
    content = [v for v in values if any(k not in _CHEAP_FIELDS and not k.startswith("@odata") for k in v)]
    with_body = sum("body" in v for v in content)
    return with_body, len(content) - with_body


def _json(call: Call, body: dict, items: int = 0, bodyless: int = 0) -> Reply:
    headers = {"Preference-Applied": ", ".join(call.prefs.applied)} if call.prefs.applied else {}
    return Reply(body=body, headers=headers, items=items, bodyless=bodyless)


def _context(call: Call, path: str) -> str:
    return f"{call.base}/v1.0/$metadata#{path}"


# ------------------------------------------------------------------------------ users and folders

def _user(call: Call) -> Reply:
    mbx = call.mbx
    given, _, surname = mbx.owner.name.partition(" ")
    return _json(call, {
        "@odata.context": _context(call, "users/$entity"), "businessPhones": [], "displayName": mbx.owner.name,
        "givenName": given, "jobTitle": None, "mail": mbx.upn, "mobilePhone": None, "officeLocation": None,
        "preferredLanguage": "en-US", "surname": surname, "userPrincipalName": mbx.upn, "id": mbx.user_id})


def _folder_list(call: Call, parent: int, context: str) -> Reply:
    q = call.query
    include_hidden = call.request.rel_url.query.get("includeHiddenFolders", "").lower() == "true"
    with call.mbx.lock:
        kids = [f for f in call.mbx.children(parent) if include_hidden or not f.hidden]
        page = kids[q.skip:q.skip + q.top]
        body = {"@odata.context": _context(call, context),
                "value": [shapes.folder_json(call.mbx, f) for f in page]}
    if q.count:
        body["@odata.count"] = len(kids)
    if q.skip + q.top < len(kids):
        params = {k: v for k, v in call.request.rel_url.query.items() if k.lower() != "$skip"}
        params["$skip"] = str(q.skip + q.top)
        body["@odata.nextLink"] = f"{call.base}{call.request.rel_url.path}?{urlencode(params, safe='$,')}"
    return _json(call, body, len(page))


def _folder_entity(call: Call, folder: int) -> Reply:
    with call.mbx.lock:
        body = {"@odata.context": _context(call, f"users('{_q(call.user_segment)}')/mailFolders/$entity"),
                **shapes.folder_json(call.mbx, call.mbx.folder(folder))}
    return _json(call, body, 1)


def _folder_delta(call: Call) -> Reply:
    """A round of `mailFolders/delta`: every folder of the mailbox below its root, nested and
    hidden ones included (`parentFolderId` and `isHidden` tell), paged by `odata.maxpagesize`.

    graphsim keeps no folder sync state: following the round's deltaLink answers 410
    syncStateNotFound (with a `Location` to start again), as Graph does for expired state.
    """
    mbx, q = call.mbx, call.query
    link_base = f"{call.base}/v1.0/users/{_q(call.user_segment)}/mailFolders/delta"
    if q.deltatoken is not None:
        raise GraphError(410, "syncStateNotFound", "graphsim keeps no folder sync state: restart synchronization "
                         "of the folders.", {"Location": link_base})
    offset = 0
    if q.skiptoken is not None:
        state = odata.decode_token(q.skiptoken)
        if not state or state.get("t") != "fd" or state.get("m") != mbx.tag.hex():
            raise GraphError(400, "ErrorInvalidUrlQuery", "The delta or skip token is invalid.")
        offset = int(state["o"])
    page_size = min(call.prefs.max_page_size or FOLDER_DEFAULT_TOP, odata.MAX_TOP)
    if call.prefs.max_page_size:
        call.prefs.applied.append(f"odata.maxpagesize={call.prefs.max_page_size}")
    with mbx.lock:
        folders = sorted(mbx.folder_list(), key=lambda f: f.num)
        values = [shapes.folder_json(mbx, f) for f in folders[offset:offset + page_size]]
        more = offset + page_size < len(folders)
    body = {"@odata.context": _context(call, "Collection(mailFolder)"), "value": values}
    if more:
        token = odata.encode_token({"t": "fd", "m": mbx.tag.hex(), "o": offset + page_size})
        body["@odata.nextLink"] = f"{link_base}?$skiptoken={token}"
    else:
        body["@odata.deltaLink"] = f"{link_base}?$deltatoken={odata.encode_token({'t': 'fdl', 'm': mbx.tag.hex()})}"
    return _json(call, body, len(values))


# ------------------------------------------------------------------------------ message listing

def _bounds(mbx: Mailbox, keys, q: odata.ListQuery) -> tuple[int, int]:
    lo, hi = 0, len(keys)
    if q.lower is not None:
        probe = (q.lower.value, -1) if q.lower.inclusive else (q.lower.value, float("inf"))
        lo = bisect.bisect_left(keys, probe, key=mbx.sort_key)
    if q.upper is not None:
        probe = (q.upper.value, float("inf")) if q.upper.inclusive else (q.upper.value, -1)
        hi = bisect.bisect_left(keys, probe, key=mbx.sort_key)
    return lo, max(lo, hi)


def _message_list(call: Call, folder: int | None, context: str) -> Reply:
    mbx, q = call.mbx, call.query
    if call.prefs.max_page_size and not any(k.lower() == "$top" for k in call.request.rel_url.query):
        q.top = min(call.prefs.max_page_size, odata.MAX_TOP)
        call.prefs.applied.append(f"odata.maxpagesize={call.prefs.max_page_size}")
    with mbx.lock:
        keys = mbx.ordered(folder)
        lo, hi = _bounds(mbx, keys, q)
        total = hi - lo
        if q.skiptoken is not None:
            state = odata.decode_token(q.skiptoken)
            if not state or state.get("t") != "l" or state.get("m") != mbx.tag.hex():
                raise GraphError(400, "ErrorInvalidUrlQuery", "The $skiptoken is invalid.")
            cursor = tuple(state["c"])
            if q.descending:
                hi = max(lo, min(hi, bisect.bisect_left(keys, cursor, key=mbx.sort_key)))
            else:
                lo = min(hi, max(lo, bisect.bisect_right(keys, cursor, key=mbx.sort_key)))
        elif q.skip:
            if q.descending:
                hi = max(lo, hi - q.skip)
            else:
                lo = min(hi, lo + q.skip)
        if q.descending:
            page_keys = [keys[i] for i in range(hi - 1, max(lo, hi - q.top) - 1, -1)]
            more = hi - q.top > lo
        else:
            page_keys = [keys[i] for i in range(lo, min(hi, lo + q.top))]
            more = lo + q.top < hi
    views = []
    for k in page_keys:
        try:
            views.append(mbx.view(k))
        except NotFound:  # deleted since the listing was read: as if deleted before
            pass
    select = q.select
    suffix = f"({','.join(select)})" if select else ""
    body = {"@odata.context": _context(call, context + suffix)}
    if q.count:
        body["@odata.count"] = total
    body["value"] = [shapes.message_json(mbx, v, select, call.prefs.body_type, call.prefs.immutable_ids)
                     for v in views]
    if more and page_keys:
        token = odata.encode_token({"t": "l", "m": mbx.tag.hex(), "c": list(mbx.sort_key(page_keys[-1]))})
        params = {k: v for k, v in call.request.rel_url.query.items() if k.lower() not in ("$skip", "$skiptoken")}
        params["$skiptoken"] = token
        body["@odata.nextLink"] = f"{call.base}{call.request.rel_url.path}?{urlencode(params, safe='$,()', quote_via=quote)}"
    return _json(call, body, *_content_items(body["value"]))


# ------------------------------------------------------------------------------ single message

def _message_routes(call: Call, rest: list[str]) -> Reply:
    mbx = call.mbx
    key = _message_key(mbx, rest[0])
    low = [s.lower() for s in rest]
    params = call.request.rel_url.query
    if len(rest) == 1:
        q = odata.parse_list_query(params, default_top=None)
        view = mbx.view(key)
        select = q.select
        suffix = f"({','.join(select)})" if select else ""
        body = {"@odata.context": _context(call, f"users('{_q(call.user_segment)}')/messages{suffix}/$entity"),
                **shapes.message_json(mbx, view, select, call.prefs.body_type, call.prefs.immutable_ids)}
        return _json(call, body, 1)
    if low[1] == "$value" and len(rest) == 2:
        view = mbx.view(key)
        return Reply(chunks=mime.message_mime(mbx, view), content_type="text/plain", items=1)
    if low[1] != "attachments":
        raise bad_segment(rest[1])
    view = mbx.view(key)
    if len(rest) == 2:
        select = _attachment_select(params)
        values = [_select_attachment(shapes.attachment_json(mbx, view, i, a, include_content=True), select)
                  for i, a in enumerate(view.content.attachments)]
        ctx = f"users('{_q(call.user_segment)}')/messages('{rest[0]}')/attachments"
        if select:
            ctx += f"({','.join(select)})"
        return _json(call, {"@odata.context": _context(call, ctx), "value": values}, len(values))
    decoded = ids.decode(rest[2])
    if decoded is None:
        raise GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.")
    kind, numbers = decoded
    if kind != ids.ATTACHMENT or ids.decode(rest[2], mbx.tag) is None or numbers[0] != key \
            or numbers[1] >= len(view.content.attachments):
        raise not_found()
    spec = view.content.attachments[numbers[1]]
    if len(rest) == 3:
        select = _attachment_select(params)
        body = {"@odata.context": _context(call, f"users('{_q(call.user_segment)}')/messages('{rest[0]}')"
                                                 "/attachments/$entity"),
                **_select_attachment(shapes.attachment_json(mbx, view, numbers[1], spec, include_content=True),
                                     select)}
        return _json(call, body, 1)
    if low[3] == "$value" and len(rest) == 4:
        return Reply(chunks=content.attachment_chunks(spec), content_type=spec.content_type or "application/octet-stream",
                     length=spec.size, items=1)
    raise bad_segment(rest[3])


def _attachment_select(params) -> list[str] | None:
    raw = next((v for k, v in params.items() if k.lower() == "$select"), None)
    if raw is None:
        return None
    picked = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        name = ATTACHMENT_FIELDS.get(part.lower())
        if name is None:
            raise GraphError(400, "BadRequest", f"Could not find a property named '{part}' on type "
                                                "'microsoft.graph.attachment'.")
        picked.append(name)
    return picked


def _select_attachment(item: dict, select: list[str] | None) -> dict:
    if not select:
        return item
    keep = {"@odata.type", "@odata.mediaContentType", "id", *select}
    return {k: v for k, v in item.items() if k in keep}


# ------------------------------------------------------------------------------ delta

def _delta(call: Call, folder: int) -> Reply:
    sim, mbx, q = call.sim, call.mbx, call.query
    folder_id = mbx.folder_id(folder)
    link_base = f"{call.base}/v1.0/users/{_q(call.user_segment)}/mailFolders/{folder_id}/messages/delta"
    token = q.deltatoken or q.skiptoken
    now = time.time()
    if token is None:
        state = {"t": "d", "m": mbx.tag.hex(), "f": folder, "p": "i", "s": mbx.seq, "c": None,
                 "g": mbx.delta_generation, "sel": q.select,
                 "lo": [q.lower.value, q.lower.inclusive] if q.lower else None,
                 "ct": sorted(q.change_types) if q.change_types else None}
    else:
        state = odata.decode_token(token)
        if not state or state.get("t") != "d" or state.get("m") != mbx.tag.hex():
            raise GraphError(400, "ErrorInvalidUrlQuery", "The delta or skip token is invalid.")
        if state["f"] != folder:
            raise GraphError(400, "ErrorInvalidUrlQuery", "The token belongs to another folder.")
        gone = {"Location": link_base}
        if state["g"] < mbx.delta_generation:
            raise GraphError(410, "resyncRequired", "The sync state has been invalidated: a full resync is "
                                                    "required for this folder.", gone)
        ttl = sim.faults.config.delta_token_ttl_s
        if ttl is not None and now - state["i"] > ttl:
            raise GraphError(410, "syncStateNotFound", "The sync state generated on "
                             f"{shapes.iso(state['i'])} has expired. Restart synchronization for this folder.", gone)
    page_size = min(call.prefs.max_page_size or q.top or DELTA_DEFAULT_PAGE, odata.MAX_TOP)
    if call.prefs.max_page_size:
        call.prefs.applied.append(f"odata.maxpagesize={call.prefs.max_page_size}")
    select = state["sel"]
    lower = state["lo"]
    change_types = set(state["ct"]) if state["ct"] else None
    values: list[dict] = []
    with mbx.lock:
        if state["p"] == "d":  # a deltaLink: start a round of changes since then
            state = {**state, "p": "c", "u": mbx.seq, "o": 0}
        if state["p"] == "i":
            keys = mbx.ordered(folder)
            lo, hi = 0, len(keys)
            if lower:
                probe = (lower[0], -1) if lower[1] else (lower[0], float("inf"))
                lo = bisect.bisect_left(keys, probe, key=mbx.sort_key)
            if state["c"] is not None:
                hi = max(lo, min(hi, bisect.bisect_left(keys, tuple(state["c"]), key=mbx.sort_key)))
            page_keys = [keys[i] for i in range(hi - 1, max(lo, hi - page_size) - 1, -1)]
            more = hi - page_size > lo
            if change_types is None or "created" in change_types:
                for k in page_keys:
                    values.append(shapes.message_json(mbx, mbx.view(k), select, call.prefs.body_type,
                                                      call.prefs.immutable_ids))
            if more and page_keys:
                next_state = {**state, "c": list(mbx.sort_key(page_keys[-1]))}
            else:
                next_state = {**state, "p": "d", "c": None}
        else:
            keys = mbx.changes_since(state["s"], state["u"])
            offset = state["o"]
            while offset < len(keys) and len(values) < page_size:
                k = keys[offset]
                offset += 1
                entry = _delta_entry(call, folder, k, state["s"], select, lower, change_types)
                if entry is not None:
                    values.append(entry)
            if offset < len(keys):
                next_state = {**state, "o": offset}
            else:
                next_state = {k: v for k, v in state.items() if k not in ("u", "o")}
                next_state.update(p="d", s=state["u"])
    next_state["i"] = now
    body = {"@odata.context": _context(call, "Collection(message)"), "value": values}
    link_token = odata.encode_token(next_state)
    if next_state["p"] == "d":
        body["@odata.deltaLink"] = f"{link_base}?$deltatoken={link_token}"
    else:
        body["@odata.nextLink"] = f"{link_base}?$skiptoken={link_token}"
    return _json(call, body, *_content_items(values))


def _delta_entry(call: Call, folder: int, key: int, since: int, select, lower, change_types) -> dict | None:
    mbx = call.mbx
    was_in = mbx.folder_at(key, since) == folder
    now_in = mbx.folder_of(key) == folder
    if now_in:
        kind = "updated" if was_in else "created"
        if change_types is not None and kind not in change_types:
            return None
        if lower and not (mbx.received(key) > lower[0] or (lower[1] and mbx.received(key) == lower[0])):
            return None
        return shapes.message_json(mbx, mbx.view(key), select, call.prefs.body_type, call.prefs.immutable_ids)
    if was_in:
        if change_types is not None and "deleted" not in change_types:
            return None
        return {"id": mbx.message_id(key, immutable=call.prefs.immutable_ids, folder=folder),
                "@removed": {"reason": "deleted"}}
    return None
