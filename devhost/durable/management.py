"""The Durable management HTTP API, with the status codes and bodies of the real extension.

Served twice: under /runtime/webhooks/durabletask (the URLs create_check_status_response hands
out; master key required when keys are enforced) and under the RPC path the SDK's client uses.
Bodies follow the SDK client's encoding: it posts an already-JSON string as JSON, so a start
body is parsed once and, when that gives a string, the string is the input text. Raised-event
payloads are stored as the raw body text, which reproduces Azure handing Python the payload
one JSON level short (SDK issue #295, durable-protocol.md).
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from devhost.durable.client_binding import management_urls
from devhost.durable.engine import ACTIVE, TERMINAL, Engine, ManagementError
from devhost.durable.history import iso_seconds, parse_iso

RUNTIME_STATUSES = {"Pending", "Running", "Completed", "ContinuedAsNew", "Failed", "Canceled",
                    "Terminated", "Suspended"}


def _json_value(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def status_body(inst: dict[str, Any], *, show_input: bool = True,
                history: list[dict[str, Any]] | None = None, show_output: bool = False) -> dict[str, Any]:
    body = {
        "name": inst["name"],
        "instanceId": inst["instanceId"],
        "runtimeStatus": inst["runtimeStatus"],
        "input": _json_value(inst.get("input")) if show_input else None,
        "customStatus": _json_value(inst.get("customStatus")),
        "output": _json_value(inst.get("output")),
        "createdTime": iso_seconds(parse_iso(inst["createdTime"])),
        "lastUpdatedTime": iso_seconds(parse_iso(inst["lastUpdatedTime"])),
    }
    if history is not None:
        body["historyEvents"] = [_history_view(ev, show_output) for ev in history]
    return body


def _history_view(ev: dict[str, Any], show_output: bool) -> dict[str, Any]:
    from devhost.durable.history import EventType
    view = {"EventType": EventType(ev["EventType"]).name, "Timestamp": ev["Timestamp"]}
    for key in ("Name", "TaskScheduledId", "TimerId", "FireAt", "Reason", "OrchestrationStatus",
                "InstanceId"):
        if ev.get(key) is not None:
            view[key] = ev[key]
    if show_output and ev.get("Result") is not None:
        view["Result"] = _json_value(ev["Result"])
    if ev.get("EventId", -1) >= 0:
        view["EventId"] = ev["EventId"]
    return view


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"Message": message, "ExceptionMessage": message}, status=status)


def _flag(request: web.Request, name: str, default: bool = False) -> bool:
    raw = request.query.get(name)
    return default if raw is None else raw.lower() == "true"


def _time_arg(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        return parse_iso(raw)
    except ValueError:
        raise ManagementError(400, f"'{name}' must be an ISO 8601 date and time, got '{raw}'.") from None


class ManagementApi:
    def __init__(self, engine: Engine, hub: str, system_key: str | None):
        self.engine = engine
        self.hub = hub
        self.system_key = system_key

    async def handle(self, request: web.Request, path: str) -> web.Response:
        """`path` is what follows the API root, e.g. `instances/abc/raiseEvent/go` (still encoded)."""
        parts = [unquote(p) for p in path.split("/") if p]
        method = request.method.upper()
        try:
            if parts and parts[0] == "orchestrators" and len(parts) in (2, 3) and method == "POST":
                return await self._start(request, parts[1], parts[2] if len(parts) == 3 else None)
            if parts and parts[0] == "instances":
                if len(parts) == 1:
                    if method == "GET":
                        return await self._list(request)
                    if method == "DELETE":
                        return await self._purge_by(request)
                elif len(parts) == 2:
                    if method == "GET":
                        return await self._status(request, parts[1])
                    if method == "DELETE":
                        return await self._purge(parts[1])
                elif len(parts) == 4 and parts[2] == "raiseEvent" and method == "POST":
                    return await self._raise(request, parts[1], parts[3])
                elif len(parts) == 3 and parts[2] in ("terminate", "suspend", "resume") and method == "POST":
                    await self.engine.control(parts[1], parts[2], request.query.get("reason"))
                    return web.Response(status=202)
                elif len(parts) == 3 and parts[2] in ("rewind", "restart") and method == "POST":
                    return _error(501, f"'{parts[2]}' is not supported by devhost.")
            return _error(404, f"No management operation at '{method} {path}'.")
        except ManagementError as exc:
            if exc.status == 404:
                return web.Response(status=404, text="", content_type="application/json")
            return _error(exc.status, str(exc))

    def _check_status(self, request: web.Request, instance_id: str) -> web.Response:
        base = f"{request.scheme}://{request.host}"
        payload = management_urls(base, self.hub, self.system_key, instance_id)
        return web.json_response(payload, status=202, headers={
            "Location": payload["statusQueryGetUri"], "Retry-After": "10"})

    async def _start(self, request: web.Request, name: str, instance_id: str | None) -> web.Response:
        raw = await request.text()
        input_text = None
        if raw.strip():
            try:
                parsed = json.loads(raw)
            except ValueError:
                return _error(400, "The request body must be JSON.")
            input_text = parsed if isinstance(parsed, str) else json.dumps(parsed)
            if input_text is not None:
                try:
                    json.loads(input_text)
                except ValueError:
                    input_text = json.dumps(input_text)  # a plain string input
        instance_id = await self.engine.start_new(name, instance_id, input_text)
        return self._check_status(request, instance_id)

    async def _status(self, request: web.Request, instance_id: str) -> web.Response:
        inst = await self.engine.store.get_instance(instance_id)
        if inst is None:
            return web.Response(status=404, text="", content_type="application/json")
        history = await self.engine.history(instance_id) if _flag(request, "showHistory") else None
        body = status_body(inst, show_input=_flag(request, "showInput", True), history=history,
                           show_output=_flag(request, "showHistoryOutput"))
        if inst["runtimeStatus"] in ACTIVE:
            location = management_urls(f"{request.scheme}://{request.host}", self.hub,
                                       self.system_key, instance_id)["statusQueryGetUri"]
            return web.json_response(body, status=202, headers={"Location": location, "Retry-After": "5"})
        return web.json_response(body, status=200)

    async def _matching(self, request: web.Request) -> list[dict[str, Any]]:
        created_from = _time_arg(request, "createdTimeFrom")
        created_to = _time_arg(request, "createdTimeTo")
        statuses = {s for s in request.query.get("runtimeStatus", "").split(",") if s}
        unknown = statuses - RUNTIME_STATUSES
        if unknown:
            raise ManagementError(400, f"Unknown runtimeStatus: {', '.join(sorted(unknown))}.")
        prefix = request.query.get("instanceIdPrefix") or ""
        found = []
        for inst in await self.engine.store.query_instances():
            created = parse_iso(inst["createdTime"])
            if created_from and created < created_from or created_to and created > created_to:
                continue
            if statuses and inst["runtimeStatus"] not in statuses:
                continue
            if not inst["instanceId"].startswith(prefix):
                continue
            found.append(inst)
        return sorted(found, key=lambda i: (i["createdTime"], i["instanceId"]))

    async def _list(self, request: web.Request) -> web.Response:
        found = await self._matching(request)
        try:
            top = int(request.query.get("top", "0") or 0)
            offset = int(request.headers.get("x-ms-continuation-token") or 0)
        except ValueError:
            return _error(400, "'top' and the continuation token must be integers.")
        headers = {}
        if top > 0:
            if offset + top < len(found):
                headers["x-ms-continuation-token"] = str(offset + top)
            found = found[offset:offset + top]
        show_input = _flag(request, "showInput", True)
        return web.json_response([status_body(i, show_input=show_input) for i in found], headers=headers)

    async def _purge(self, instance_id: str) -> web.Response:
        """DELETE instances/{id}, as HttpApiHandler.HandleDeleteHistoryByIdRequestAsync answers it
        (Durable 3.9.1+): 404 for an unknown orchestration; 412 for one that is not in a terminal
        state, its body the message as a JSON string (CreateResponse(PreconditionFailed, string), not
        an error object); else 200 {"instancesDeleted": n}. An '@' id (an entity's) is not looked up
        first: unknown, it answers 200 with 0. The SDK maps 200 and 404 and raises "The operation
        failed with an unexpected status code 412" for the refusal."""
        try:
            deleted = await self.engine.purge(instance_id)
        except ManagementError as exc:
            if exc.status == 412:
                return web.json_response(str(exc), status=412)
            raise
        if not deleted and not instance_id.startswith("@"):
            return web.Response(status=404, text="", content_type="application/json")
        return web.json_response({"instancesDeleted": deleted})

    async def _purge_by(self, request: web.Request) -> web.Response:
        deleted = 0
        for inst in await self._matching(request):
            if inst["runtimeStatus"] in TERMINAL:
                deleted += await self.engine.purge(inst["instanceId"])
        if not deleted:
            return web.Response(status=404, text="", content_type="application/json")
        return web.json_response({"instancesDeleted": deleted})

    async def _raise(self, request: web.Request, instance_id: str, name: str) -> web.Response:
        raw = await request.text()
        if raw.strip():
            try:
                json.loads(raw)
            except ValueError:
                return _error(400, "Only application/json request content is supported.")
        await self.engine.raise_event(instance_id, name, raw if raw.strip() else None)
        return web.Response(status=202)
