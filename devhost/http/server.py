"""The HTTP front door: function routes, the Durable webhooks and the SDK's RPC path.

Routing, keys, the webhooks and the RPC path are answered here, in devhost's process, as the
Functions host answers them; an HTTP function itself runs in a worker process (round-robin), its
request and result crossing as plain dicts (http/transport.py). Requests never wait on each
other: in the worker async functions run on its event loop, sync ones on its thread pool, and
orchestration work happens in the engine's own tasks. An exception in a function answers 500
with an empty body (so does a worker dying mid-request); the trace goes to the log only.
"""
from __future__ import annotations

import logging
from typing import Callable

from aiohttp import web

from devhost.discovery import FunctionSpec
from devhost.durable.client_binding import WEBHOOK_PATH, rpc_path
from devhost.durable.management import ManagementApi
from devhost.http.convert import to_func_request, to_web_response
from devhost.http.keys import Keys, presented_key
from devhost.http.routing import RouteTable, compile_route
from devhost.http.transport import request_to_dict, result_from_dict
from devhost.invoker import Invoker, log_failure

log = logging.getLogger("devhost")


def _json_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def build_route_table(prefix: str, functions: list[FunctionSpec]) -> RouteTable:
    routes = []
    for spec in functions:
        trigger = spec.trigger
        route = trigger.get("route") or spec.name
        routes.append(compile_route(prefix, route, trigger.get("methods"), spec))
    return RouteTable(routes)


class HttpFront:
    def __init__(self, *, routes: RouteTable, invoker: Invoker, keys: Keys, management: ManagementApi,
                 rpc_token: str, client_json: Callable[[], str]):
        self.routes = routes
        self.invoker = invoker
        self.keys = keys
        self.management = management
        self.rpc_prefix = rpc_path(rpc_token)
        self.client_json = client_json

    def application(self) -> web.Application:
        app = web.Application(client_max_size=100 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        # Route on the raw path: an encoded '/' inside an id stays inside its segment.
        path = request.raw_path.split("?", 1)[0]
        if path.startswith(self.rpc_prefix):
            return await self.management.handle(request, path[len(self.rpc_prefix):])
        if path == WEBHOOK_PATH or path.startswith(WEBHOOK_PATH + "/"):
            if not self.keys.allows("admin", presented_key(request.headers, request.query)):
                return _json_error(401, "Unauthorized", "A valid master key is required.")
            return await self.management.handle(request, path[len(WEBHOOK_PATH):])
        route, params, path_matched = self.routes.resolve(path, request.method)
        if route is None:
            if path_matched:
                return _json_error(405, "MethodNotAllowed", f"{request.method} is not allowed on {path}.")
            return _json_error(404, "NotFound", f"No function is listening on {path}.")
        spec: FunctionSpec = route.target
        if not self.keys.allows(spec.trigger.get("authLevel", "function"),
                                presented_key(request.headers, request.query)):
            return web.Response(status=401)
        trigger = request_to_dict(await to_func_request(request, params))
        client = self.client_json() if spec.client_param else None
        try:
            result = await self.invoker.invoke(spec, trigger, client=client, label=f"{request.method} {path}")
            return to_web_response(result_from_dict(result))
        except Exception as exc:
            log_failure("function '%s' raised", spec.name, exc=exc)
            return web.Response(status=500)
