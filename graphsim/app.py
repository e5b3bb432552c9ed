"""The aiohttp application: which URL goes to Entra, to Graph, or to the admin API.

Why: one server plays both hosts (Entra login and Graph), as `AZURE_AUTHORITY_HOST` and
`GRAPH_API_ENDPOINT` may both point at it; this module only wires routes to their handlers.
"""
from __future__ import annotations

import functools
import logging
import uuid

from aiohttp import web

from . import admin, entra, graph, shapes

log = logging.getLogger("graphsim")


def _bind(handler, sim):
    @functools.wraps(handler)
    async def bound(request: web.Request) -> web.StreamResponse:
        result = handler(sim, request)
        if hasattr(result, "__await__"):
            result = await result
        return result
    return bound


@web.middleware
async def _unexpected_errors(request: web.Request, handler):
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status == 404 or e.status == 405:
            body = shapes.error_body("BadRequest" if e.status == 404 else "MethodNotAllowed",
                                     f"graphsim has no route for {request.method} {request.path}.")
            return web.json_response(body, status=400 if e.status == 404 else 405)
        raise
    except Exception:
        request_id = str(uuid.uuid4())
        log.exception("graphsim: unexpected error serving %s %s (request-id %s)", request.method, request.path,
                      request_id)
        body = shapes.error_body("generalException", "An unexpected error occurred in graphsim.",
                                 request.headers.get("client-request-id"), request_id)
        return web.json_response(body, status=500)


def build_app(sim) -> web.Application:
    app = web.Application(middlewares=[_unexpected_errors], client_max_size=64 * 1024 * 1024)
    for method, path, handler in admin.ROUTES:
        app.router.add_route(method, path, _bind(handler, sim))
    app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", _bind(entra.openid_configuration, sim))
    app.router.add_get("/{tenant}/discovery/v2.0/keys", _bind(entra.jwks, sim))
    app.router.add_post("/{tenant}/oauth2/v2.0/token", _bind(entra.token_endpoint, sim))
    app.router.add_get("/{tenant}/oauth2/v2.0/authorize", _bind(entra.not_supported, sim))
    app.router.add_route("*", "/v1.0/{tail:.*}", _bind(graph.handle, sim))
    return app
