"""The sample app on devhost, and a small client for its routes and the Durable webhooks."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import requests

from tests.support.devhost_fixtures import wait_for

SAMPLE_APP = Path(__file__).parent / "sample_app"
QUIET_TIMER = {"TICK_SCHEDULE": "0 0 0 1 1 *", "TICK_SECONDS": "0", "TICK_TABLE": "quietticks"}
FINISHED = {"Completed", "Failed", "Terminated"}


class SampleClient:
    """Calls the sample app's routes (which use the SDK client) and devhost's webhooks."""

    def __init__(self, host):
        self.host = host
        self.http = requests.Session()

    def api(self, path: str) -> str:
        return self.host.url(f"api/{path}")

    def new_id(self, prefix: str = "t") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    def start(self, name: str, payload=None, instance_id: str | None = None) -> str:
        instance_id = instance_id or self.new_id(name)
        resp = self.http.post(self.api(f"orchestrators/{name}/{instance_id}"),
                              json=payload if payload is not None else None)
        assert resp.status_code == 202, resp.text
        return resp.json()["id"]

    def status(self, instance_id: str, history: bool = False) -> dict:
        resp = self.http.get(self.api(f"instances/{instance_id}"),
                             params={"history": "true"} if history else None)
        assert resp.status_code in (200, 404), resp.text
        return resp.json()

    def wait_status(self, instance_id: str, statuses=FINISHED, timeout: float = 30) -> dict:
        return wait_for(lambda: (s := self.status(instance_id)).get("runtimeStatus") in statuses and s,
                        timeout=timeout, message=f"{instance_id} to reach {statuses}")

    def raise_event(self, instance_id: str, event: str, payload=None) -> requests.Response:
        return self.http.post(self.api(f"instances/{instance_id}/events/{event}"),
                              json=payload if payload is not None else None)

    def control(self, instance_id: str, action: str, reason: str = "by test") -> requests.Response:
        return self.http.post(self.api(f"instances/{instance_id}/{action}"), params={"reason": reason})

    def webhook(self, method: str, path: str, **kwargs) -> requests.Response:
        params = dict(kwargs.pop("params", None) or {})
        if self.host.keys.get("master"):
            params.setdefault("code", self.host.keys["master"])
        return self.http.request(method, self.host.url(f"runtime/webhooks/durabletask/{path}"),
                                 params=params, **kwargs)


@pytest.fixture
def sample(devhost_factory):
    return SampleClient(devhost_factory(SAMPLE_APP, env=QUIET_TIMER))
