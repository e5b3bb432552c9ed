"""Helpers for testing the Graph client against graphsim over real HTTPS.

``SimEnv`` bundles a simulator with ``Settings`` for its endpoints and builds clients.
``Recorder`` wraps the real sender and clock of one client to log, per thread, every answer's
status/Retry-After and every retry wait, so tests can check that waits honour what the
simulator asked for.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest

from mailextract.graph import GraphClient, GraphCredentials
from mailextract.graph.retry import SystemClock
from mailextract.settings import Settings


@dataclass
class SimEnv:
    sim: Any
    settings: Settings

    @property
    def credentials(self) -> GraphCredentials:
        return GraphCredentials(self.sim.tenant_id, self.sim.client_id, client_secret=self.sim.client_secret)

    def client(self, credentials: GraphCredentials | None = None, *, cached: bool = False, **overrides: str) -> GraphClient:
        settings = self.settings if not overrides else settings_for(self.sim, **overrides)
        return GraphClient.for_credentials(credentials or self.credentials, settings, cached=cached)


def settings_for(sim: Any, **overrides: str) -> Settings:
    values = {
        "AZURE_AUTHORITY_HOST": sim.authority_host,
        "GRAPH_API_ENDPOINT": sim.graph_endpoint,
        "GRAPH_MAX_TOTAL_WAIT_SECONDS": "60",
        "GRAPH_PAGE_SIZE": "50",
    }
    values.update(overrides)
    return Settings.from_mapping(values)


class Recorder:
    """Per-thread event log of answers and retry waits of one client (wraps sender + clock)."""

    def __init__(self, client: GraphClient):
        self.inner_sender = client.transport.sender
        self.inner_clock = client.transport.clock if not isinstance(client.transport.clock, Recorder) else SystemClock()
        self._events: dict[int, list[tuple]] = {}
        self._lock = threading.Lock()
        client.transport.sender = self
        client.transport.clock = self

    def _log(self, event: tuple) -> None:
        with self._lock:
            self._events.setdefault(threading.get_ident(), []).append(event)

    # HttpSender
    def send(self, method, url, **kwargs):
        try:
            response = self.inner_sender.send(method, url, **kwargs)
        except Exception as exc:
            self._log(("error", type(exc).__name__))
            raise
        self._log(("answer", response.status_code, response.headers.get("Retry-After")))
        return response

    # Clock
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self):
        return self.inner_clock.now()

    def sleep(self, seconds: float) -> None:
        self._log(("sleep", seconds))
        self.inner_clock.sleep(seconds)

    def threads(self) -> list[list[tuple]]:
        with self._lock:
            return [list(events) for events in self._events.values()]

    def answers(self) -> list[tuple]:
        return [e for events in self.threads() for e in events if e[0] == "answer"]

    def check_waits_honoured(self) -> int:
        """Every retryable answer is followed in its thread by a wait (= Retry-After when sent).

        Returns how many waits followed a Retry-After header.
        """
        honoured = 0
        for events in self.threads():
            for i, event in enumerate(events):
                if event[0] != "answer" or not (event[1] == 429 or event[1] >= 500):
                    continue
                assert i + 1 < len(events), f"retryable answer {event} was the last event of its thread"
                follow = events[i + 1]
                assert follow[0] == "sleep", f"answer {event} not followed by a wait but by {follow}"
                if event[2] is not None:
                    assert follow[1] == pytest.approx(float(event[2])), f"waited {follow[1]}s after {event}"
                    honoured += 1
        return honoured
