"""Composition root of the Function app: builds the DFApp and registers each blueprint.

Nothing else belongs here: the Functions worker (and devhost) import this module to index the
functions, so it must not read settings or connect to anything at import time.
"""
import azure.durable_functions as df
import azure.functions as func

from activities import extraction as extraction_activities
from http_triggers import api_docs
from http_triggers import batch as batch_routes
from http_triggers import connections as connection_routes
from http_triggers import extraction as extraction_routes
from http_triggers import messages as message_routes
from http_triggers import operations as operation_routes
from http_triggers import sync as sync_routes
from orchestrators import extraction as extraction_orchestrators
from timer_triggers import sync_schedule

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (api_docs.bp, extraction_routes.bp, batch_routes.bp, operation_routes.bp, message_routes.bp,
                  connection_routes.bp, sync_routes.bp, sync_schedule.bp,
                  extraction_orchestrators.bp, extraction_activities.bp):
    app.register_functions(blueprint)
