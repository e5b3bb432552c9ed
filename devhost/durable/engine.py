"""The orchestration engine: runs episodes of orchestrations, activities and durable timers.

An episode loads an instance's partition, picks the messages that are due, appends them to the
history after an OrchestratorStarted event, replays the orchestrator through the SDK and turns
the new actions into work. Everything an episode decides is committed in one Table transaction
(instance row, history chunk, new work and timers, consumed messages), so a `kill -9` at any
point leaves either the episode undone (it is redone from the same messages) or done.

Writes to other instances (a child's start, a parent's completion) are made before the commit
and are idempotent, and completions for a task that already has one in history are dropped, so
a redone episode never delivers a result twice. Activities are at-least-once, as in Azure.

Delivery follows the extension: an episode takes every message that is due for the instance, in
arrival order (DurableTask.Core TaskOrchestrationDispatcher.ReconcileMessagesWithState adds all
of a work item's messages to the history before the replay), up to what one Azure Storage work
item can hold (MAX_EVENTS_PER_EPISODE). The first episode starts with ExecutionStarted; a
suspended instance takes only resume and terminate. The ids of new work, retries included, are
allocated as the extension's replay allocates them (actions.py), whatever arrives together.
"""
from __future__ import annotations

import asyncio
import heapq
import json
import logging
import time
import uuid
from datetime import datetime
from typing import Any, Callable

from devhost.discovery import FunctionRegistry
from devhost.durable import actions as act
from devhost.durable.history import EventType, completed_task_id, event, iso, utcnow
from devhost.durable.replay import ReplayResult
from devhost.durable.store import DurableStore, Row, epoch_ms, history_key, message_key, work_key
from devhost.invoker import Invoker

log = logging.getLogger("devhost")

ACTIVE = ("Pending", "Running", "Suspended")
TERMINAL = ("Completed", "Failed", "Terminated", "Canceled")
# The most messages one episode takes. The extension has no per-episode cap: a work item carries
# every message buffered for the instance. The buffer is what bounds it: DurableTask.AzureStorage
# ControlQueue.GetMessagesAsync stops dequeuing once ControlQueueBufferThreshold messages are
# pending and dequeues ControlQueueBatchSize (32) at a time, and the extension sets the threshold
# to 32 for Python apps on the Consumption plan (AzureStorageDurabilityProviderFactory; 256 on
# other plans). 32 + 32 - 1 = 63, which also keeps an episode's deletes in one 100-operation
# Table transaction.
MAX_EVENTS_PER_EPISODE = 63
INVALID_ID_CHARS = set("/\\#?") | {chr(c) for c in range(0x20)} | {chr(c) for c in range(0x7F, 0xA0)}


class ManagementError(Exception):
    """A management call that cannot be honoured; `status` is the HTTP status Azure answers."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def validate_instance_id(instance_id: str) -> None:
    if not instance_id or len(instance_id) > 256:
        raise ManagementError(400, "Instance IDs must be between 1 and 256 characters.")
    bad = sorted({c for c in instance_id if c in INVALID_ID_CHARS})
    if bad:
        raise ManagementError(400, f"Instance ID '{instance_id}' contains characters that are not "
                                   f"allowed: {' '.join(repr(c) for c in bad)}.")


class Engine:
    def __init__(self, store: DurableStore, registry: FunctionRegistry, *,
                 max_activities: int, max_orchestrators: int,
                 client_json: Callable[[], str] | None = None, workers: Any):
        """`workers` (devhost.workers.WorkerPool) runs activities and replays in the worker
        processes, holding each worker to max_activities activities and max_orchestrators replays
        (host.json's limits apply per instance in Azure, and a worker is one instance)."""
        self.store = store
        self.registry = registry
        self._client_json = client_json  # the value of a durableClient binding on an activity
        self._pool = workers
        self._invoker = Invoker(workers)
        # Episodes' storage I/O runs here; their replays are limited per worker by the pool.
        self._episode_slots = asyncio.Semaphore(max_orchestrators * workers.count)
        self._workers: dict[str, asyncio.Task] = {}
        self._dirty: set[str] = set()
        self._active_work: set[tuple[str, str]] = set()
        self._background: set[asyncio.Task] = set()
        self._wakeups: list[tuple[int, str]] = []
        self._wakeup_changed = asyncio.Event()
        self._timer_task: asyncio.Task | None = None

    # --- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Resume whatever a previous process left: due messages, timers, unfinished activities."""
        now_ms = epoch_ms(utcnow())
        for instance_id, row in await self.store.scan_rows("M"):
            if row.visible_ms <= now_ms:
                self.notify(instance_id)
            else:
                self._wake_at(row.visible_ms, instance_id)
        for instance_id, row in await self.store.scan_rows("W"):
            self._spawn(self._run_activity(instance_id, row))
        self._timer_task = asyncio.create_task(self._timer_loop())

    async def stop(self) -> None:
        tasks = [t for t in (self._timer_task, *self._workers.values(), *self._background) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # The worker processes belong to whoever started them (devhost.host / __main__).

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- scheduling ------------------------------------------------------------------------
    def notify(self, instance_id: str) -> None:
        """Make sure an episode runs for this instance (coalescing repeated notifications)."""
        self._dirty.add(instance_id)
        if instance_id not in self._workers:
            self._workers[instance_id] = asyncio.create_task(self._drain(instance_id))

    async def _drain(self, instance_id: str) -> None:
        try:
            while instance_id in self._dirty:
                self._dirty.discard(instance_id)
                async with self._episode_slots:
                    try:
                        more = await self._episode(instance_id)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("episode of instance %s failed; retrying in 1s", instance_id)
                        await asyncio.sleep(1)
                        more = True
                if more:
                    self._dirty.add(instance_id)
        finally:
            self._workers.pop(instance_id, None)

    def _wake_at(self, when_ms: int, instance_id: str) -> None:
        heapq.heappush(self._wakeups, (when_ms, instance_id))
        self._wakeup_changed.set()

    async def _timer_loop(self) -> None:
        while True:
            now_ms = epoch_ms(utcnow())
            while self._wakeups and self._wakeups[0][0] <= now_ms:
                self.notify(heapq.heappop(self._wakeups)[1])
            delay = (self._wakeups[0][0] - now_ms) / 1000 if self._wakeups else 3600
            self._wakeup_changed.clear()
            try:
                await asyncio.wait_for(self._wakeup_changed.wait(), timeout=max(delay, 0.005))
            except asyncio.TimeoutError:
                pass

    # --- activities ------------------------------------------------------------------------
    async def _run_activity(self, instance_id: str, row: Row) -> None:
        """Run one work row's activity in a worker with a free slot and store its result. When
        the worker dies mid-run the activity did not complete: it runs again (at-least-once, as
        for the work rows a crashed devhost leaves)."""
        from devhost.invoker import WorkerLost, failure_text, log_failure
        key = (instance_id, row.key)
        if key in self._active_work:
            return
        self._active_work.add(key)
        try:
            work = row.data
            spec = self.registry.get("activity", work["name"])
            label = f"InstanceId={instance_id}"
            if spec is None:
                ev = event(EventType.TaskFailed, utcnow(), TaskScheduledId=work["taskId"],
                           Reason=f"The function '{work['name']}' doesn't exist, is disabled, "
                                  "or is not an activity function.", Details="")
            else:
                lost = 0
                while True:
                    client = self._client_json() if spec.client_param and self._client_json else None
                    try:
                        async with self._pool.activity_slot() as worker:
                            value = await self._invoker.invoke(spec, {"input": work.get("input")},
                                                               client=client, worker=worker, label=label)
                        ev = event(EventType.TaskCompleted, utcnow(), TaskScheduledId=work["taskId"],
                                   Result=value)
                        break
                    except WorkerLost as exc:
                        lost += 1
                        log.warning("activity %s of instance %s did not complete (%s); running it "
                                    "again", work["name"], instance_id, exc)
                        await asyncio.sleep(min(0.2 * 2 ** (lost - 1), 10))
                    except Exception as exc:
                        log_failure("activity %s of instance %s failed: %s", work["name"], instance_id,
                                    failure_text(exc), exc=exc, level=logging.WARNING)
                        ev = event(EventType.TaskFailed, utcnow(), TaskScheduledId=work["taskId"],
                                   Reason=f"Activity function '{work['name']}' failed: "
                                          f"{failure_text(exc)}", Details="")
                        break
            stored = await self.store.complete_work(
                instance_id, row.key,
                {"kind": "event", "execution": work["executionId"], "event": ev})
            if stored:
                self.notify(instance_id)
        finally:
            self._active_work.discard(key)

    # --- one episode -----------------------------------------------------------------------
    async def _episode(self, instance_id: str) -> bool:
        """Run one episode; True when due messages remain for another one."""
        part = await self.store.load(instance_id)
        inst = part.instance
        if inst is None:  # purged: retire what is left
            await self.store.delete_rows(instance_id, [r.key for r in part.messages + part.work])
            return False
        now = utcnow()
        now_ms = epoch_ms(now)
        execution = inst["executionId"]
        history = [ev for row in part.history.get(execution, []) for ev in row.data["events"]]
        stale_history = [r.key for e, rows in part.history.items() if e != execution for r in rows]
        due = sorted((m for m in part.messages if m.visible_ms <= now_ms), key=lambda m: m.key)
        later = [m.visible_ms for m in part.messages if m.visible_ms > now_ms]
        if later:
            self._wake_at(min(later), instance_id)
        if stale_history:
            await self.store.delete_rows(instance_id, stale_history)

        if inst["runtimeStatus"] in TERMINAL:
            await self.store.delete_rows(instance_id, [m.key for m in due])
            return False

        picked = self._pick(inst, history, due, now)
        if picked.dropped:
            await self.store.delete_rows(instance_id, picked.dropped)
        if picked.terminate is not None:
            await self._terminate(inst, picked, now)
            return False
        if not picked.deliver:
            if picked.control:
                inst["runtimeStatus"] = "Suspended" if picked.suspended else "Running"
                await self._commit(inst, picked.control, picked.consumed, [], now)
            return picked.more

        spec = self.registry.get("orchestrator", inst["name"])
        if spec is None:
            await self._finish(inst, picked, None, now, error=(
                f"The function '{inst['name']}' doesn't exist, is disabled, or is not an "
                "orchestrator function."))
            return False
        played = [dict(ev, IsPlayed=True) for ev in history]
        # Control events after the delivered ones: history[1] must stay ExecutionStarted.
        new_events = [event(EventType.OrchestratorStarted, now), *picked.deliver, *picked.control]
        started = time.monotonic()
        result: ReplayResult = await self._pool.replay(
            spec.name, instance_id=instance_id, input_text=inst.get("input"),
            history=played + new_events,
            parent_instance_id=(inst.get("parent") or {}).get("instanceId"))
        self._log_replay(inst, result, started)
        if result.custom_status is not None:
            inst["customStatus"] = json.dumps(result.custom_status)

        book = act.Book.from_json(inst.get("book"))
        if result.error is not None:
            await self._finish(inst, picked, new_events, now, error=(
                f"Orchestrator function '{inst['name']}' failed: {result.error}"))
            return picked.more
        try:
            # The extension's replay of this history with the SDK's actions: the ids it allocates
            # for new work, retries included (actions.py).
            commands = book.episode(result.actions, history + new_events)
        except (act.NonDeterminismError, act.UnsupportedActionError) as exc:
            await self._finish(inst, picked, new_events, now,
                               error=f"Orchestrator function '{inst['name']}' failed: {exc}")
            return False
        inst["book"] = book.to_json()

        if result.is_done:
            continue_as_new = next((a for a in reversed(result.actions)
                                    if a.get("actionType") == act.CONTINUE_AS_NEW), None)
            if continue_as_new is not None:
                await self._continue_as_new(inst, picked, continue_as_new, now)
                return True
            await self._finish(inst, picked, new_events, now, output=result.output)
            return picked.more

        inst["runtimeStatus"] = "Suspended" if picked.suspended else "Running"
        rows, work, scheduled_events, cancelled = await self._execute(inst, commands, part, now)
        await self._commit(inst, new_events + scheduled_events, picked.consumed + cancelled, rows, now)
        for item in work:
            self._spawn(self._run_activity(instance_id, item))
        return picked.more

    def _log_replay(self, inst: dict[str, Any], result: ReplayResult, started: float) -> None:
        outcome = "Failed" if result.error is not None else ("Completed" if result.is_done else "Awaiting")
        log.info("Executed 'Functions.%s' (%s, InstanceId=%s, Duration=%.0fms)", inst["name"],
                 outcome, inst["instanceId"], (time.monotonic() - started) * 1000)

    # --- choosing what to deliver ------------------------------------------------------------
    class _Picked:
        def __init__(self) -> None:
            self.deliver: list[dict[str, Any]] = []
            self.control: list[dict[str, Any]] = []
            self.consumed: list[str] = []
            self.dropped: list[str] = []
            self.terminate: str | None = None
            self.suspended = False
            self.more = False

    def _pick(self, inst: dict[str, Any], history: list[dict[str, Any]], due: list[Row],
              now: datetime) -> "Engine._Picked":
        picked = Engine._Picked()
        picked.suspended = inst["runtimeStatus"] == "Suspended"
        execution = inst["executionId"]
        book = act.Book.from_json(inst.get("book"))
        done = {tid for tid in map(completed_task_id, history) if tid is not None}
        skipped_while_suspended = False
        if not history:  # the first episode must begin with ExecutionStarted
            start = next((m for m in due if m.data["kind"] == "start"
                          and m.data.get("execution") == execution), None)
            if start is None:
                return picked
            picked.deliver.append(start.data["event"])
            picked.consumed.append(start.key)
        # Every due message, in arrival order, up to what one work item can hold (see above).
        picked.more = len(due) > MAX_EVENTS_PER_EPISODE
        for msg in due[:MAX_EVENTS_PER_EPISODE]:
            if msg.key in picked.consumed:
                continue
            kind = msg.data["kind"]
            if kind == "terminate":
                picked.terminate = msg.data.get("reason") or ""
                picked.consumed.append(msg.key)
                break
            if kind in ("suspend", "resume"):
                picked.consumed.append(msg.key)
                if picked.suspended != (kind == "suspend"):
                    picked.suspended = kind == "suspend"
                    picked.control.append(event(
                        EventType.ExecutionSuspended if picked.suspended else EventType.ExecutionResumed,
                        now, Reason=msg.data.get("reason")))
                continue
            if kind == "start" or msg.data.get("execution") not in (None, execution):
                picked.dropped.append(msg.key)  # belongs to an earlier execution
                continue
            if picked.suspended:
                skipped_while_suspended = True
                continue
            ev = msg.data["event"]
            task_id = completed_task_id(ev)
            if task_id is not None and (task_id in done or task_id >= book.next_id):
                picked.dropped.append(msg.key)  # a duplicate, or for a task never scheduled
                continue
            if task_id is not None:
                done.add(task_id)
            picked.deliver.append(ev)
            picked.consumed.append(msg.key)
        # Resumed after skipping messages: deliver them in the next episode.
        picked.more = picked.more or (skipped_while_suspended and not picked.suspended)
        return picked

    # --- executing commands ----------------------------------------------------------------
    async def _execute(self, inst: dict[str, Any], commands: list[act.Command], part, now: datetime):
        """Rows to commit, the activities among them, history events that record them, and
        timer rows to cancel."""
        instance_id, execution = inst["instanceId"], inst["executionId"]
        rows: list[dict[str, Any]] = []
        work: list[Row] = []
        events: list[dict[str, Any]] = []
        cancelled: list[str] = []
        for cmd in commands:
            if isinstance(cmd, act.ScheduleActivity):
                events.append(event(EventType.TaskScheduled, now, cmd.task_id, Name=cmd.name,
                                    Input=cmd.input))
                item = Row(work_key(execution, cmd.task_id),
                           {"name": cmd.name, "input": cmd.input, "taskId": cmd.task_id,
                            "executionId": execution})
                work.append(item)
                rows.append(await self.store.entity(instance_id, item.key, item.data))
            elif isinstance(cmd, act.StartTimer):
                events.append(event(EventType.TimerCreated, now, cmd.timer_id, FireAt=iso(cmd.fire_at)))
                fired = event(EventType.TimerFired, cmd.fire_at, TimerId=cmd.timer_id,
                              FireAt=iso(cmd.fire_at))
                rows.append(await self.store.entity(
                    instance_id, message_key(epoch_ms(cmd.fire_at), f"T{execution}-{cmd.timer_id}"),
                    {"kind": "event", "execution": execution, "event": fired}))
                self._wake_at(epoch_ms(cmd.fire_at), instance_id)
            elif isinstance(cmd, act.CancelTimer):
                suffix = f"-T{execution}-{cmd.timer_id}"
                cancelled += [m.key for m in part.messages if m.key.endswith(suffix)]
            elif isinstance(cmd, act.StartSubOrchestration):
                child_id = cmd.instance_id or f"{instance_id}:{cmd.task_id}"
                events.append(event(EventType.SubOrchestrationInstanceCreated, now, cmd.task_id,
                                    Name=cmd.name, InstanceId=child_id, Input=cmd.input))
                await self._start_child(inst, cmd, child_id, now)
        return rows, work, events, cancelled

    async def _start_child(self, parent: dict[str, Any], cmd: act.StartSubOrchestration,
                           child_id: str, now: datetime) -> None:
        link = {"instanceId": parent["instanceId"], "executionId": parent["executionId"],
                "taskId": cmd.task_id}
        existing = await self.store.get_instance(child_id)
        if existing is not None and existing.get("parent") == link:
            return  # created by an earlier try of this episode
        problem = None
        if self.registry.get("orchestrator", cmd.name) is None:
            problem = (f"The function '{cmd.name}' doesn't exist, is disabled, or is not an "
                       "orchestrator function.")
        elif existing is not None and existing["runtimeStatus"] in ACTIVE:
            problem = f"An orchestration with instance ID '{child_id}' is already running."
        if problem:
            await self._deliver(link, event(EventType.SubOrchestrationInstanceFailed, now,
                                            TaskScheduledId=cmd.task_id, Reason=problem, Details=""))
            return
        await self.create_instance(cmd.name, child_id, cmd.input, parent=link)

    async def _deliver(self, link: dict[str, Any], ev: dict[str, Any]) -> None:
        await self.store.put_message(link["instanceId"],
                                     {"kind": "event", "execution": link["executionId"], "event": ev})
        self.notify(link["instanceId"])

    # --- ends of an execution --------------------------------------------------------------
    async def _finish(self, inst: dict[str, Any], picked: "_Picked", new_events, now: datetime, *,
                      output: Any = None, error: str | None = None) -> None:
        events = list(new_events or [])
        if error is not None:
            inst["runtimeStatus"] = "Failed"
            inst["output"] = json.dumps(error)
            events.append(event(EventType.ExecutionCompleted, now, OrchestrationStatus="Failed",
                                Result=inst["output"]))
            log.error("Orchestration %s (%s) failed: %s", inst["instanceId"], inst["name"], error)
        else:
            inst["runtimeStatus"] = "Completed"
            inst["output"] = json.dumps(output)
            events.append(event(EventType.ExecutionCompleted, now, OrchestrationStatus="Completed",
                                Result=inst["output"]))
        parent = inst.get("parent")
        if parent:
            if error is not None:
                ev = event(EventType.SubOrchestrationInstanceFailed, now,
                           TaskScheduledId=parent["taskId"], Reason=error, Details="")
            else:
                ev = event(EventType.SubOrchestrationInstanceCompleted, now,
                           TaskScheduledId=parent["taskId"], Result=inst["output"])
            await self._deliver(parent, ev)
        await self._commit(inst, events, picked.consumed, [], now)

    async def _terminate(self, inst: dict[str, Any], picked: "_Picked", now: datetime) -> None:
        inst["runtimeStatus"] = "Terminated"
        inst["output"] = json.dumps(picked.terminate)
        events = [event(EventType.ExecutionTerminated, now, Input=inst["output"])]
        await self._commit(inst, events, picked.consumed, [], now)
        log.info("Orchestration %s (%s) terminated: %s", inst["instanceId"], inst["name"], picked.terminate)

    async def _continue_as_new(self, inst: dict[str, Any], picked: "_Picked",
                               action: dict[str, Any], now: datetime) -> None:
        """A new execution with the given input; the old history is dropped (bounded replay)."""
        inst.update(executionId=uuid.uuid4().hex, input=action.get("input"), book=None,
                    historySeq=0, runtimeStatus="Suspended" if picked.suspended else "Running")
        start = self._start_message(inst, now)
        rows = [await self.store.entity(inst["instanceId"], message_key(epoch_ms(now)), start)]
        await self._commit(inst, [], picked.consumed, rows, now)

    def _start_message(self, inst: dict[str, Any], now: datetime) -> dict[str, Any]:
        ev = event(EventType.ExecutionStarted, now, Name=inst["name"], Version=None,
                   Input=inst.get("input"),
                   OrchestrationInstance={"InstanceId": inst["instanceId"],
                                          "ExecutionId": inst["executionId"]},
                   ParentInstance=inst.get("parent"))
        return {"kind": "start", "execution": inst["executionId"], "event": ev}

    async def _commit(self, inst: dict[str, Any], events: list[dict[str, Any]], consumed: list[str],
                      rows: list[dict[str, Any]], now: datetime) -> None:
        """Write the episode: extra rows first when they do not fit one transaction, then the
        instance row, the history chunk and the consumed messages atomically."""
        instance_id = inst["instanceId"]
        inst["lastUpdatedTime"] = iso(now)
        ops_final = []
        if events:
            seq = inst.get("historySeq", 0)
            chunk = await self.store.entity(instance_id, history_key(inst["executionId"], seq),
                                            {"events": events})
            ops_final.append(self.store.upsert(chunk))
            inst["historySeq"] = seq + 1
        ops_final.append(self.store.upsert(await self.store.instance_entity(inst)))
        ops_final += [self.store.delete(instance_id, key) for key in consumed]
        extra = [self.store.upsert(row) for row in rows]
        if len(extra) + len(ops_final) <= 100:
            await self.store.transact(extra + ops_final)
        else:
            await self.store.transact(extra)
            await self.store.transact(ops_final)

    # --- the management operations ---------------------------------------------------------
    async def create_instance(self, name: str, instance_id: str, input_text: str | None, *,
                              parent: dict[str, Any] | None = None) -> None:
        validate_instance_id(instance_id)
        existing = await self.store.get_instance(instance_id)
        if existing is not None:
            if existing["runtimeStatus"] in ACTIVE:
                raise ManagementError(409, f"An orchestration with instance ID '{instance_id}' "
                                           f"already exists with status {existing['runtimeStatus']}.")
            await self.store.purge(instance_id)  # a finished instance is replaced, as in Azure
        now = utcnow()
        inst = {"instanceId": instance_id, "name": name, "runtimeStatus": "Pending",
                "input": input_text, "output": None, "customStatus": None,
                "createdTime": iso(now), "lastUpdatedTime": iso(now),
                "executionId": uuid.uuid4().hex, "parent": parent, "book": None, "historySeq": 0}
        start = await self.store.entity(instance_id, message_key(epoch_ms(now)),
                                        self._start_message(inst, now))
        await self.store.transact([self.store.upsert(await self.store.instance_entity(inst)),
                                   self.store.upsert(start)])
        log.info("Started orchestration %s (%s)", instance_id, name)
        self.notify(instance_id)

    async def start_new(self, name: str, instance_id: str | None, input_text: str | None) -> str:
        spec = self.registry.get("orchestrator", name)
        if spec is None:
            raise ManagementError(400, f"The function '{name}' doesn't exist, is disabled, or is "
                                       "not an orchestrator function.")
        instance_id = instance_id or uuid.uuid4().hex
        await self.create_instance(spec.name, instance_id, input_text)
        return instance_id

    async def _require(self, instance_id: str, *, active: bool) -> dict[str, Any]:
        inst = await self.store.get_instance(instance_id)
        if inst is None:
            raise ManagementError(404, f"No instance with ID '{instance_id}' found.")
        if active and inst["runtimeStatus"] not in ACTIVE:
            raise ManagementError(410, f"Instance '{instance_id}' is {inst['runtimeStatus']}: "
                                       "it no longer accepts this operation.")
        return inst

    async def raise_event(self, instance_id: str, name: str, input_text: str | None) -> None:
        await self._require(instance_id, active=True)
        ev = event(EventType.EventRaised, utcnow(), Name=name, Input=input_text)
        await self.store.put_message(instance_id, {"kind": "event", "execution": None, "event": ev})
        self.notify(instance_id)

    async def control(self, instance_id: str, kind: str, reason: str | None) -> None:
        """terminate, suspend or resume: queued like any message, applied in order."""
        await self._require(instance_id, active=True)
        await self.store.put_message(instance_id, {"kind": kind, "reason": reason})
        self.notify(instance_id)

    async def history(self, instance_id: str) -> list[dict[str, Any]]:
        part = await self.store.load(instance_id)
        if part.instance is None:
            return []
        rows = part.history.get(part.instance["executionId"], [])
        return [ev for row in rows for ev in row.data["events"]]

    async def purge(self, instance_id: str) -> int:
        """Purge one instance by id; the count purged (0: no such instance).

        As the extension's HttpApiHandler.HandleDeleteHistoryByIdRequestAsync (Durable 3.9.1+, PR
        #3311; bundles 4.x resolve Durable 3.x): an orchestration whose status is not Completed,
        Failed, Terminated or Canceled is refused with 412 and left as it is, a terminate requested
        but not processed yet included (the instance still says Running). Ids starting with '@'
        (entity ids) skip that check. The storage provider does not check anything itself
        (DurableTask.AzureStorage AzureTableTrackingStore.PurgeInstanceHistoryAsync deletes the
        rows it finds), so before 3.9.1 a running instance was purged. docs/durable-host.md."""
        inst = await self.store.get_instance(instance_id)
        if inst is None:
            return 0
        if not instance_id.startswith("@") and inst["runtimeStatus"] not in TERMINAL:
            raise ManagementError(412, "Only orchestrations in a terminal state can be purged, but the orchestration "
                                       f"with instance ID {instance_id} has status {inst['runtimeStatus']}")
        return await self.store.purge(instance_id)
