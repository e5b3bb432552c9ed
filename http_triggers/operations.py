"""Operator routes: GET health (anonymous), GET jobs, DELETE emails/extract/{connection_id},
DELETE emails/extract/batch/{batch_id}."""
from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from http_triggers.orchestrations import DurableOrchestrations
from http_triggers.responses import base_url, json_response, respond
from mailextract import __version__
from mailextract.errors import MailExtractionError
from mailextract.operations.health import check_health
from mailextract.operations.jobs import JobOperations

bp = df.Blueprint()


def operations(client) -> JobOperations:
    return JobOperations(DurableOrchestrations(client).purge)


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def health(req: func.HttpRequest, client) -> func.HttpResponse:
    try:
        healthy, body = await check_health(DurableOrchestrations(client).probe)
    except MailExtractionError as exc:  # settings the service needs are missing or invalid
        return json_response({"status": "unavailable", "version": __version__, "failing": ["settings"],
                              "dependencies": {"settings": {"status": "error", "error": str(exc)}}}, 503)
    return json_response(body, 200 if healthy else 503)


@bp.route(route="jobs", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def jobs_list(req: func.HttpRequest, client) -> func.HttpResponse:
    return await respond(lambda: operations(client).list(
        req.params.get("status"), req.params.get("kind"), req.params.get("limit"), req.params.get("cursor"),
        base_url(req)))


@bp.route(route="emails/extract/{connection_id}", methods=["DELETE"])
@bp.durable_client_input(client_name="client")
async def extraction_delete(req: func.HttpRequest, client) -> func.HttpResponse:
    return await respond(lambda: operations(client).delete_run(req.route_params["connection_id"],
                                                               req.params.get("purge_data")))


@bp.route(route="emails/extract/batch/{batch_id}", methods=["DELETE"])
@bp.durable_client_input(client_name="client")
async def batch_delete(req: func.HttpRequest, client) -> func.HttpResponse:
    return await respond(lambda: operations(client).delete_batch(req.route_params["batch_id"],
                                                                 req.params.get("purge_data")))
