"""The admin HTTP API under /_graphsim/: the Python API, for processes that are not the test process.

Why: when graphsim runs as its own process (`python -m graphsim`, e.g. behind devhost in e2e
tests or benchmarks), tests still need to change mailboxes, shape faults, read the truth and the
statistics. Every operation maps onto SimState/Mailbox methods; bodies are JSON. It has no
authentication: the server listens on loopback only and is never deployed.
"""
from __future__ import annotations

import asyncio
import base64
import functools
import json

from aiohttp import web

from .mailbox import NotFound


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _guard(handler):
    @functools.wraps(handler)
    async def wrapped(sim, request: web.Request) -> web.StreamResponse:
        try:
            return await handler(sim, request)
        except (NotFound, KeyError) as e:
            return _error(404, "NotFound", f"not found: {e}")
        except (ValueError, TypeError) as e:
            return _error(400, "BadRequest", str(e))
    return wrapped


async def _body(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except json.JSONDecodeError:
        raise ValueError("body must be JSON")
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


async def _off_loop(fn, *args, **kwargs):
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kwargs))


@_guard
async def health(sim, request):
    return web.json_response({"ok": True, "tenantId": sim.tenant_id})


@_guard
async def get_stats(sim, request):
    return web.json_response(sim.stats.snapshot())


@_guard
async def reset_stats(sim, request):
    sim.stats.reset()
    return web.json_response(sim.stats.snapshot())


@_guard
async def get_faults(sim, request):
    return web.json_response(sim.faults.config.as_dict())


@_guard
async def set_faults(sim, request):
    sim.faults.config.update(**await _body(request))
    return web.json_response(sim.faults.config.as_dict())


@_guard
async def reset_faults(sim, request):
    from .faults import FaultConfig
    sim.faults.config.update(**{k: v for k, v in FaultConfig().__dict__.items()})
    sim.faults.reset_counters()
    return web.json_response(sim.faults.config.as_dict())


@_guard
async def expire_delta(sim, request):
    body = await _body(request)
    sim.expire_delta_tokens(body.get("upn"))
    return web.json_response({"expired": body.get("upn") or "all"})


@_guard
async def list_mailboxes(sim, request):
    return web.json_response([{"upn": m.upn, "userId": m.user_id, "tenantId": m.tenant_id, "count": m.count()}
                              for m in sim.mailboxes()])


@_guard
async def add_mailbox(sim, request):
    body = await _body(request)
    mbx = await _off_loop(sim.add_mailbox, body["upn"], int(body.get("count", 100)))
    return web.json_response({"upn": mbx.upn, "userId": mbx.user_id}, status=201)


@_guard
async def folders(sim, request):
    mbx = sim.mailbox(request.match_info["upn"])
    return web.json_response(await _off_loop(mbx.folders))


@_guard
async def add_folder(sim, request):
    mbx = sim.mailbox(request.match_info["upn"])
    body = await _body(request)
    folder_id = mbx.add_folder(body["name"], body.get("parent"), hidden=bool(body.get("hidden", False)))
    return web.json_response({"id": folder_id}, status=201)


@_guard
async def delete_folder(sim, request):
    mbx = sim.mailbox(request.match_info["upn"])
    await _off_loop(mbx.delete_folder, request.match_info["folder"])
    return web.Response(status=204)


@_guard
async def messages(sim, request):
    mbx = sim.mailbox(request.match_info["upn"])
    q = request.rel_url.query
    fields = q["fields"].split(",") if q.get("fields") else None
    result = await _off_loop(mbx.messages, q.get("folder") or None,
                             immutable_ids=q.get("idType", "immutable").lower() != "rest",
                             include_body=q.get("includeBody", "").lower() == "true", fields=fields)
    return web.json_response(result, dumps=functools.partial(json.dumps, ensure_ascii=False))


def _fields(body: dict) -> dict:
    fields = {k: v for k, v in body.items() if k != "folder"}
    for a in fields.get("attachments") or []:
        if "contentBytes" in a:
            a["content"] = base64.b64decode(a.pop("contentBytes"))
    return fields


@_guard
async def add_message(sim, request):
    mbx = sim.mailbox(request.match_info["upn"])
    body = await _body(request)
    message_id = mbx.add_message(body.get("folder", "inbox"), **_fields(body))
    return web.json_response({"id": message_id}, status=201)


@_guard
async def update_message(sim, request):
    mbx = sim.mailbox(request.match_info["upn"])
    mbx.update_message(request.match_info["id"], **await _body(request))
    return web.Response(status=204)


@_guard
async def move_message(sim, request):
    mbx = sim.mailbox(request.match_info["upn"])
    body = await _body(request)
    return web.json_response({"id": mbx.move_message(request.match_info["id"], body["folder"])})


@_guard
async def delete_message(sim, request):
    mbx = sim.mailbox(request.match_info["upn"])
    mbx.delete_message(request.match_info["id"])
    return web.Response(status=204)


@_guard
async def register_app(sim, request):
    body = await _body(request)
    sim.directory.register_app(body.get("tenantId") or sim.tenant_id, body["clientId"], body.get("secret"),
                               body.get("certificatePem"), tuple(body.get("permissions") or ("Mail.Read",)))
    return web.json_response({"tenantId": body.get("tenantId") or sim.tenant_id, "clientId": body["clientId"]},
                             status=201)


@_guard
async def deny(sim, request):
    body = await _body(request)
    sim.directory.deny(body["clientId"], body["upn"])
    return web.Response(status=204)


@_guard
async def allow(sim, request):
    body = await _body(request)
    sim.directory.allow(body["clientId"], body["upn"])
    return web.Response(status=204)


ROUTES = [
    ("GET", "/_graphsim/health", health),
    ("GET", "/_graphsim/stats", get_stats),
    ("POST", "/_graphsim/stats/reset", reset_stats),
    ("GET", "/_graphsim/faults", get_faults),
    ("POST", "/_graphsim/faults", set_faults),
    ("POST", "/_graphsim/faults/reset", reset_faults),
    ("POST", "/_graphsim/delta/expire", expire_delta),
    ("GET", "/_graphsim/mailboxes", list_mailboxes),
    ("POST", "/_graphsim/mailboxes", add_mailbox),
    ("GET", "/_graphsim/mailboxes/{upn}/folders", folders),
    ("POST", "/_graphsim/mailboxes/{upn}/folders", add_folder),
    ("DELETE", "/_graphsim/mailboxes/{upn}/folders/{folder}", delete_folder),
    ("GET", "/_graphsim/mailboxes/{upn}/messages", messages),
    ("POST", "/_graphsim/mailboxes/{upn}/messages", add_message),
    ("PATCH", "/_graphsim/mailboxes/{upn}/messages/{id}", update_message),
    ("POST", "/_graphsim/mailboxes/{upn}/messages/{id}/move", move_message),
    ("DELETE", "/_graphsim/mailboxes/{upn}/messages/{id}", delete_message),
    ("POST", "/_graphsim/apps", register_app),
    ("POST", "/_graphsim/deny", deny),
    ("POST", "/_graphsim/allow", allow),
]
