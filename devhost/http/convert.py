"""aiohttp request -> func.HttpRequest, and a function's return value -> aiohttp response,
written back faithfully (status, headers, body), as the Python worker does."""
from __future__ import annotations

import azure.functions as func
from aiohttp import web


async def to_func_request(request: web.Request, route_params: dict[str, str]) -> func.HttpRequest:
    return func.HttpRequest(
        method=request.method,
        url=str(request.url),
        headers=dict(request.headers),
        params=dict(request.query),
        route_params=route_params,
        body=await request.read(),
    )


def to_web_response(result: object) -> web.Response:
    if isinstance(result, func.HttpResponse):
        headers = {k: v for k, v in result.headers.items()}
        if not any(k.lower() == "content-type" for k in headers) and result.mimetype:
            charset = f"; charset={result.charset}" if result.charset else ""
            headers["Content-Type"] = f"{result.mimetype}{charset}"
        return web.Response(status=result.status_code, body=result.get_body(), headers=headers)
    if result is None:
        return web.Response(status=204)
    if isinstance(result, str):
        return web.Response(status=200, text=result, content_type="text/plain", charset="utf-8")
    if isinstance(result, (bytes, bytearray)):
        return web.Response(status=200, body=bytes(result), content_type="application/octet-stream")
    raise TypeError(f"an HTTP function returned {type(result).__name__}; "
                    "expected func.HttpResponse, str or bytes")
