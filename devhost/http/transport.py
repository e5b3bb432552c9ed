"""An HTTP function's request and result as plain dicts, to cross from devhost's process to a
worker and back (the Python worker gets them from the host as RPC messages in the same way).

devhost builds the `func.HttpRequest` with http/convert.py and sends `request_to_dict` of it; the
worker rebuilds it with `request_from_dict`, runs the function and sends `result_to_dict` of what
it returned; devhost turns that back into the same object (`result_from_dict`) and writes it with
http/convert.py's `to_web_response`, so one rule writes every response.
"""
from __future__ import annotations

from typing import Any

import azure.functions as func


def request_to_dict(req: func.HttpRequest) -> dict[str, Any]:
    return {"method": req.method, "url": req.url, "headers": dict(req.headers.items()),
            "params": dict(req.params), "route_params": dict(req.route_params), "body": req.get_body()}


def request_from_dict(data: dict[str, Any]) -> func.HttpRequest:
    return func.HttpRequest(method=data["method"], url=data["url"], headers=data["headers"],
                            params=data["params"], route_params=data["route_params"], body=data["body"])


def result_to_dict(result: object) -> dict[str, Any]:
    if isinstance(result, func.HttpResponse):
        return {"kind": "response", "status": result.status_code,
                "headers": list(result.headers.items()), "body": result.get_body(),
                "mimetype": result.mimetype, "charset": result.charset}
    if result is None:
        return {"kind": "none"}
    if isinstance(result, str):
        return {"kind": "str", "value": result}
    if isinstance(result, (bytes, bytearray)):
        return {"kind": "bytes", "value": bytes(result)}
    return {"kind": "unsupported", "type": type(result).__name__}


def result_from_dict(data: dict[str, Any]) -> object:
    kind = data["kind"]
    if kind == "response":
        response = func.HttpResponse(data["body"], status_code=data["status"],
                                     mimetype=data["mimetype"], charset=data["charset"])
        for name, value in data["headers"]:
            response.headers.add_header(name, value)
        return response
    if kind == "none":
        return None
    if kind in ("str", "bytes"):
        return data["value"]
    raise TypeError(f"an HTTP function returned {data['type']}; "
                    "expected func.HttpResponse, str or bytes")
