"""Replays an orchestrator of this app through the real SDK with hand-fed results (no runtime,
no storage), one episode at a time, as devhost's engine would."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import azure.durable_functions as df

from devhost.durable import actions as act
from devhost.durable.history import EventType, event
from devhost.durable.replay import replay
from orchestrators import extraction

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
app = df.DFApp()
app.register_functions(extraction.bp)
HANDLERS = {f.get_function_name(): f.get_user_function() for f in app.get_functions()}


class Run:
    def __init__(self, orchestrator: str, run_input):
        self.orchestrator, self.input = orchestrator, run_input
        self.history, self.book, self.now = [], act.Book(), T0
        self.result = None

    def start(self):
        return self.episode(event(EventType.ExecutionStarted, T0, Name=self.orchestrator, Version=None,
                                  Input=json.dumps(self.input)))

    def episode(self, *events):
        self.now += timedelta(seconds=1)
        new = [event(EventType.OrchestratorStarted, self.now), *events]
        self.result = replay(HANDLERS[self.orchestrator], instance_id="i", input_text=json.dumps(self.input),
                             history=[dict(e, IsPlayed=True) for e in self.history] + new, parent_instance_id=None)
        self.history += new
        assert self.result.error is None, self.result.error
        retried = [command for e in events for command in self.book.on_delivered(e, self.now)]
        return retried + self.book.plan(self.result.actions)

    def done(self, task_id, value):
        return event(EventType.TaskCompleted, self.now, TaskScheduledId=task_id, Result=json.dumps(value))


def scheduled(commands):
    """The activities an episode scheduled: (task id, name, input)."""
    return [(c.task_id, c.name, json.loads(c.input)) for c in commands if isinstance(c, act.ScheduleActivity)]
