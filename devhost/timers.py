"""Timer triggers: 6-field NCRONTAB schedules (`{second} {minute} {hour} {day} {month}
{day-of-week}`) or a TimeSpan (`hh:mm:ss`), `run_on_startup`, and `past_due`.

At most one run at a time per timer function: the next occurrence is computed only after a run
ends. The last scheduled occurrence is kept in Table storage, so an occurrence missed while the
host was down runs at start with `past_due` true, as the Functions host's schedule monitor does.
"""
from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime, timedelta, timezone
from typing import Callable

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient
from croniter import croniter

from devhost.discovery import FunctionSpec
from devhost.invoker import Invoker, log_failure

log = logging.getLogger("devhost")
TIMESPAN = re.compile(r"^(\d+):(\d{2}):(\d{2})$")
PAST_DUE_TOLERANCE = timedelta(seconds=1)


class Schedule:
    def __init__(self, expression: str):
        self.expression = expression.strip()
        match = TIMESPAN.match(self.expression)
        if match:
            h, m, s = (int(g) for g in match.groups())
            self.interval = timedelta(hours=h, minutes=m, seconds=s)
            if self.interval <= timedelta(0):
                raise ValueError(f"timer schedule '{expression}' must be positive")
        else:
            if len(self.expression.split()) != 6:
                raise ValueError(f"timer schedule '{expression}' must have 6 NCRONTAB fields "
                                 "(second minute hour day month day-of-week) or be hh:mm:ss")
            if not croniter.is_valid(self.expression, second_at_beginning=True):
                raise ValueError(f"timer schedule '{expression}' is not a valid NCRONTAB expression")
            self.interval = None

    def next_after(self, when: datetime) -> datetime:
        if self.interval is not None:
            return when + self.interval
        return croniter(self.expression, when, second_at_beginning=True).get_next(datetime)


class TimerRunner:
    def __init__(self, spec: FunctionSpec, schedule: Schedule, invoker: Invoker, table: TableClient,
                 client_json: Callable[[], str]):
        self.spec = spec
        self.schedule = schedule
        self.invoker = invoker
        self.table = table
        self.client_json = client_json

    async def _last(self) -> datetime | None:
        try:
            row = await self.table.get_entity("timers", self.spec.name)
            return datetime.fromisoformat(row["Last"])
        except ResourceNotFoundError:
            return None

    async def _record(self, occurrence: datetime) -> None:
        await self.table.upsert_entity({"PartitionKey": "timers", "RowKey": self.spec.name,
                                        "Last": occurrence.isoformat()}, mode=UpdateMode.REPLACE)

    async def _fire(self, past_due: bool) -> None:
        """One run, in a worker (round-robin), which builds the TimerRequest."""
        client = self.client_json() if self.spec.client_param else None
        try:
            await self.invoker.invoke(self.spec, {"past_due": past_due}, client=client,
                                      label=f"past_due={past_due}")
        except Exception as exc:
            log_failure("timer function '%s' raised", self.spec.name, exc=exc)

    async def run(self) -> None:
        """Run forever; a storage hiccup is logged and retried, never ends the schedule."""
        while True:
            try:
                await self._run_schedule()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("timer '%s' schedule failed; retrying in 5s", self.spec.name)
                await asyncio.sleep(5)

    async def _run_schedule(self) -> None:
        now = datetime.now(timezone.utc)
        last = await self._last()
        if last is not None and self.schedule.next_after(last) < now:
            await self._record(now)
            await self._fire(past_due=True)  # an occurrence was missed while the host was down
        elif self.spec.trigger.get("runOnStartup"):
            await self._fire(past_due=False)
        while True:
            now = datetime.now(timezone.utc)
            due = self.schedule.next_after(now)
            await asyncio.sleep(max((due - datetime.now(timezone.utc)).total_seconds(), 0))
            await self._record(due)
            late = datetime.now(timezone.utc) - due > PAST_DUE_TOLERANCE
            await self._fire(past_due=late)


async def open_timer_table(connection_string: str, hub: str) -> TableClient:
    table = TableClient.from_connection_string(connection_string, f"{hub}Timers")
    try:
        await table.create_table()
    except ResourceExistsError:
        pass
    return table
