"""The sync schedule: every tick (setting SYNC_TIMER_SCHEDULE, an NCRONTAB expression; every
minute in local.settings.json.example) starts a sync of each enabled connection that is due.
The Functions host runs at most one tick of a timer function at a time; a connection whose run
is still active is skipped (and logged), never started twice."""
from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from http_triggers.orchestrations import DurableOrchestrations
from mailextract.sync.service import SyncService

bp = df.Blueprint()


@bp.timer_trigger(schedule="%SYNC_TIMER_SCHEDULE%", arg_name="timer", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def sync_due_connections(timer: func.TimerRequest, client) -> None:
    await SyncService(DurableOrchestrations(client)).start_due()
