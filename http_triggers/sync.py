"""POST connections/{connection_id}/sync: start a sync of a connection now (409 while a run of
that connection is active). Its progress shows on GET emails/extract/status/{connection_id},
and it is paused, continued and cancelled through the same routes as an extraction."""
from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from http_triggers.orchestrations import DurableOrchestrations
from http_triggers.responses import base_url, respond
from mailextract.sync.service import SyncService

bp = df.Blueprint()


@bp.route(route="connections/{connection_id}/sync", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def connection_sync(req: func.HttpRequest, client) -> func.HttpResponse:
    return await respond(lambda: SyncService(DurableOrchestrations(client)).start(
        req.route_params["connection_id"], base_url(req)), 202)
