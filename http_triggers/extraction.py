"""Routes of single-mailbox extraction runs, tracked by the caller's connection_id:
POST emails/extract/{start,pause,continue,cancel}/{connection_id},
GET emails/extract/status/{connection_id}, GET emails/extract/result/{connection_id}."""
from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from http_triggers.orchestrations import DurableOrchestrations
from http_triggers.responses import base_url, json_body, respond
from mailextract.extraction.service import ExtractionService

bp = df.Blueprint()


def service(client) -> ExtractionService:
    return ExtractionService(DurableOrchestrations(client))


@bp.route(route="emails/extract/start/{connection_id}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def extraction_start(req: func.HttpRequest, client) -> func.HttpResponse:
    return await respond(lambda: service(client).start(req.route_params["connection_id"], json_body(req),
                                                       base_url(req)), 202)


@bp.route(route="emails/extract/pause/{connection_id}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def extraction_pause(req: func.HttpRequest, client) -> func.HttpResponse:
    return await respond(lambda: service(client).pause(req.route_params["connection_id"]), 202)


@bp.route(route="emails/extract/continue/{connection_id}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def extraction_continue(req: func.HttpRequest, client) -> func.HttpResponse:
    return await respond(lambda: service(client).resume(req.route_params["connection_id"]), 202)


@bp.route(route="emails/extract/cancel/{connection_id}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def extraction_cancel(req: func.HttpRequest, client) -> func.HttpResponse:
    return await respond(lambda: service(client).cancel(req.route_params["connection_id"]))


@bp.route(route="emails/extract/status/{connection_id}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def extraction_status(req: func.HttpRequest, client) -> func.HttpResponse:
    return await respond(lambda: service(client).status(req.route_params["connection_id"]))


@bp.route(route="emails/extract/result/{connection_id}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def extraction_result(req: func.HttpRequest, client) -> func.HttpResponse:
    return await respond(lambda: service(client).result(req.route_params["connection_id"],
                                                        req.params.get("limit"), req.params.get("cursor")))
