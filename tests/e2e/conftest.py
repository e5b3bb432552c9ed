"""The whole app over real HTTP: devhost running function_app.py, Azurite, graphsim over HTTPS.

Each test gets its own simulator and devhost (own task hub); connection ids are unique per
test, so the shared Azurite tables never mix runs of two tests.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest
import requests
from cryptography.fernet import Fernet

from devhost.azurite import REPO_ROOT
from tests.support.devhost_fixtures import DevhostProcess, wait_for

FINISHED = ("completed", "cancelled", "failed")


@dataclass
class Stack:
    host: DevhostProcess
    sim: object
    encryption_key: str

    def __post_init__(self):
        self.http = requests.Session()

    def url(self, path: str) -> str:
        return self.host.url(f"api/{path.lstrip('/')}")

    def post(self, path: str, body=None, **kwargs) -> requests.Response:
        return self.http.post(self.url(path), json=body, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(self.url(path), **kwargs)

    def new_connection(self) -> str:
        return f"conn-{uuid.uuid4().hex[:12]}"

    def start(self, upn: str, options=None, config=None, connection_id: str | None = None) -> str:
        connection_id = connection_id or self.new_connection()
        body = {"user_upn": upn}
        if options is not None:
            body["options"] = options
        if config is not None:
            body["config"] = config
        resp = self.post(f"emails/extract/start/{connection_id}", body)
        assert resp.status_code == 202, resp.text
        return connection_id

    def status(self, connection_id: str) -> dict:
        resp = self.get(f"emails/extract/status/{connection_id}")
        assert resp.status_code == 200, resp.text
        return resp.json()

    def batch_status(self, batch_id: str) -> dict:
        resp = self.get(f"emails/extract/batch/status/{batch_id}")
        assert resp.status_code == 200, resp.text
        return resp.json()

    @staticmethod
    def _wait_status(read, what: str, statuses, timeout: float) -> dict:
        def reached():
            status = read()
            return status if status["status"] in statuses else None
        return wait_for(reached, timeout=timeout, interval=0.25, message=f"{what} to reach {statuses}")

    def wait(self, connection_id: str, statuses=FINISHED, timeout: float = 90) -> dict:
        return self._wait_status(lambda: self.status(connection_id), connection_id, statuses, timeout)

    def wait_batch(self, batch_id: str, statuses=FINISHED, timeout: float = 120) -> dict:
        return self._wait_status(lambda: self.batch_status(batch_id), batch_id, statuses, timeout)

    def collect(self, path: str, key: str, **params) -> list[dict]:
        """Every item of a paged list route, following next_cursor to the end."""
        items, cursor = [], None
        while True:
            page = self.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
            assert page.status_code == 200, page.text
            body = page.json()
            if "limit" in params:
                assert len(body[key]) <= int(params["limit"])
            items += body[key]
            cursor = body["next_cursor"]
            if cursor is None:
                return items

    def emails(self, connection_id: str, limit: int = 1000) -> list[dict]:
        return self.collect(f"emails/extract/result/{connection_id}", "emails", limit=limit)

    def restart(self) -> None:
        """kill -9 devhost and start it again on the same port, hub and storage."""
        self.host.restart()
        self.http = requests.Session()


def truth_ids(sim, upn: str) -> set[str]:
    return {m["id"] for m in sim.mailbox(upn).messages(fields=["id"])}


@pytest.fixture
def stack_factory(devhost_factory, graphsim_factory, tmp_path):
    def start(mailboxes=None, seed: int = 3, env: dict | None = None, args=(), **sim_options) -> Stack:
        sim = graphsim_factory(mailboxes=mailboxes or {"alice@contoso.com": 150, "bob@contoso.com": 40},
                               seed=seed, **sim_options)
        key = Fernet.generate_key().decode()
        settings = tmp_path / f"settings-{uuid.uuid4().hex[:6]}.json"
        settings.write_text(json.dumps({"Values": {}}))  # never a developer's local.settings.json
        host = devhost_factory(REPO_ROOT, args=["--settings", str(settings), *args], env={
            "AZURE_AUTHORITY_HOST": sim.authority_host, "GRAPH_API_ENDPOINT": sim.graph_endpoint,
            "REQUESTS_CA_BUNDLE": sim.ca_bundle, "TENANT_ID": sim.tenant_id,
            "OUTLOOK_CLIENT_ID": sim.client_id, "OUTLOOK_CLIENT_SECRET": sim.client_secret,
            "CREDENTIAL_ENCRYPTION_KEY": key, "GRAPH_PAGE_SIZE": "25",
            "SYNC_TIMER_SCHEDULE": "0 0 0 1 1 *",  # tests that want the schedule set their own
            **(env or {})})
        return Stack(host, sim, key)
    return start


@pytest.fixture
def stack(stack_factory) -> Stack:
    return stack_factory()
