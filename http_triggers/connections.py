"""Routes of connections (saved mailbox sets with credentials and a sync schedule):
POST connections, GET connections, GET/PUT/DELETE connections/{connection_id},
POST connections/{connection_id}/test. Secrets are never answered: credentials show as set/not set."""
from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from http_triggers.responses import json_body, respond
from mailextract.connections.service import ConnectionService

bp = df.Blueprint()


@bp.route(route="connections", methods=["POST"])
async def connection_create(req: func.HttpRequest) -> func.HttpResponse:
    return await respond(lambda: ConnectionService().create(json_body(req)), 201)


@bp.route(route="connections", methods=["GET"])
async def connection_list(req: func.HttpRequest) -> func.HttpResponse:
    return await respond(lambda: ConnectionService().list())


@bp.route(route="connections/{connection_id}", methods=["GET"])
async def connection_get(req: func.HttpRequest) -> func.HttpResponse:
    return await respond(lambda: ConnectionService().get(req.route_params["connection_id"]))


@bp.route(route="connections/{connection_id}", methods=["PUT"])
async def connection_replace(req: func.HttpRequest) -> func.HttpResponse:
    return await respond(lambda: ConnectionService().replace(req.route_params["connection_id"], json_body(req)))


@bp.route(route="connections/{connection_id}", methods=["DELETE"])
async def connection_delete(req: func.HttpRequest) -> func.HttpResponse:
    return await respond(lambda: ConnectionService().delete(req.route_params["connection_id"]))


@bp.route(route="connections/{connection_id}/test", methods=["POST"])
async def connection_test(req: func.HttpRequest) -> func.HttpResponse:
    return await respond(lambda: ConnectionService().test(req.route_params["connection_id"]))
