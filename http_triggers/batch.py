"""Routes of batch extraction runs, tracked by the batch_id the service returns:
POST emails/extract/batch/start, POST emails/extract/batch/{pause,continue,cancel}/{batch_id},
GET emails/extract/batch/status/{batch_id}, GET emails/extract/batch/result/{batch_id}."""
from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from http_triggers.orchestrations import DurableOrchestrations
from http_triggers.responses import base_url, json_body, respond
from mailextract.extraction.batches import BatchService

bp = df.Blueprint()


def service(client) -> BatchService:
    return BatchService(DurableOrchestrations(client))


@bp.route(route="emails/extract/batch/start", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def batch_start(req: func.HttpRequest, client) -> func.HttpResponse:
    return await respond(lambda: service(client).start(json_body(req), base_url(req)), 202)


@bp.route(route="emails/extract/batch/pause/{batch_id}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def batch_pause(req: func.HttpRequest, client) -> func.HttpResponse:
    return await respond(lambda: service(client).pause(req.route_params["batch_id"]), 202)


@bp.route(route="emails/extract/batch/continue/{batch_id}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def batch_continue(req: func.HttpRequest, client) -> func.HttpResponse:
    return await respond(lambda: service(client).resume(req.route_params["batch_id"]), 202)


@bp.route(route="emails/extract/batch/cancel/{batch_id}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def batch_cancel(req: func.HttpRequest, client) -> func.HttpResponse:
    return await respond(lambda: service(client).cancel(req.route_params["batch_id"]))


@bp.route(route="emails/extract/batch/status/{batch_id}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def batch_status(req: func.HttpRequest, client) -> func.HttpResponse:
    return await respond(lambda: service(client).status(req.route_params["batch_id"]))


@bp.route(route="emails/extract/batch/result/{batch_id}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def batch_result(req: func.HttpRequest, client) -> func.HttpResponse:
    return await respond(lambda: service(client).result(req.route_params["batch_id"], base_url(req)))
