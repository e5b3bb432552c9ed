"""Stored-mail routes: GET emails/messages (filters, search, paging), GET emails/messages/{id}
(with its body), GET emails/messages/{id}/attachments/{attachment_id} (the stored bytes)."""
from __future__ import annotations

from urllib.parse import quote

import azure.durable_functions as df
import azure.functions as func

from http_triggers.responses import respond, respond_with
from mailextract.operations.messages import MessageQueries

bp = df.Blueprint()


@bp.route(route="emails/messages", methods=["GET"])
async def messages_search(req: func.HttpRequest) -> func.HttpResponse:
    return await respond(lambda: MessageQueries().search(dict(req.params)))


@bp.route(route="emails/messages/{message_id}", methods=["GET"])
async def message_get(req: func.HttpRequest) -> func.HttpResponse:
    return await respond(lambda: MessageQueries().message(req.route_params["message_id"],
                                                          req.params.get("connection_id")))


def _attachment_response(found) -> func.HttpResponse:
    entry, content = found
    headers = {}
    if entry.get("name"):
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(entry['name'])}"
    return func.HttpResponse(content, status_code=200, headers=headers,
                             mimetype=entry.get("content_type") or "application/octet-stream")


@bp.route(route="emails/messages/{message_id}/attachments/{attachment_id}", methods=["GET"])
async def attachment_get(req: func.HttpRequest) -> func.HttpResponse:
    return await respond_with(_attachment_response, lambda: MessageQueries().attachment(
        req.route_params["message_id"], req.route_params["attachment_id"], req.params.get("connection_id")))
