"""Operator routes: GET health (anonymous), GET jobs, DELETE emails/extract/{connection_id},
DELETE emails/extract/batch/{batch_id}.

The deletes remove a finished run (or a batch and its runs): the orchestration's history, then the
credential it kept, its data with purge_data=true, and its job row. A run whose row is active is
refused (409 "cancel it first"). A row says finished a moment before its orchestration does (a
completing run's last step; a cancel's terminate, processed when the orchestration's control queue
is next read), so a delete right after a cancel waits for the orchestration to reach a terminal
status and then purges it, answering 200 as for any finished run. It never purges an orchestration
that is still running: it reads the status first, since the Durable extension before 3.9.1 purges
a running instance when asked to, and from 3.9.1 it refuses with 412, which is waited out the same
way. If the orchestration has not ended within 45 s the answer is 409 "still stopping" and nothing
was deleted; the same call later completes it. mailextract/operations/jobs.py implements this and
docs/durable-host.md gives the sources.
"""
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
    orchestrations = DurableOrchestrations(client)
    return JobOperations(orchestrations.purge, instance_status=orchestrations.runtime_status)


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
