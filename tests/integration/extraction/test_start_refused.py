"""A start the Durable runtime refuses: the caller gets 503 `runtime_unavailable`, the stored run
(or batch) shows `failed` with `start_failed` instead of staying `pending`, a secret the request
brought is forgotten, and the run can be started again (a refused sync: test_sync_guarantees.py).
Job state in Azurite; the runtime is our Orchestrations port refusing, as the durable client does
when the host is down."""
from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from cryptography.fernet import Fernet

from http_triggers.responses import respond
from mailextract import jobs as J
from mailextract.errors import MissingCredentials
from mailextract.extraction.batches import BatchService
from mailextract.extraction.service import START_FAILED, ExtractionService
from mailextract.settings import Settings
from mailextract.storage.jobs import JobStore

UPN = "alice@contoso.com"
REFUSED = {"error": {"code": "runtime_unavailable", "message": "the Durable Functions runtime did not accept the "
                                                                "run, which is marked failed; start it again later"}}


class Runtime:
    """Our Orchestrations port: refuses every start while `down`, records the ones it accepts."""

    def __init__(self, down: bool = True):
        self.down, self.started, self.refused = down, [], []

    async def start(self, orchestrator, instance_id, payload):
        if self.down:
            self.refused.append(instance_id)
            raise Exception("Cannot connect to host 127.0.0.1:7071")  # what the SDK client raises
        self.started.append((orchestrator, instance_id, payload))

    async def raise_event(self, instance_id, name, payload=None):
        raise AssertionError("not expected")

    async def terminate(self, instance_id, reason):
        raise AssertionError("not expected")

    async def runtime_status(self, instance_id):
        return None  # no earlier instance: nothing to purge

    async def purge(self, instance_id):
        raise AssertionError("not expected")


@pytest.fixture
def settings(storage_connection_string) -> Settings:
    return Settings.from_mapping({"AzureWebJobsStorage": storage_connection_string, "TENANT_ID": "tenant",
                                  "OUTLOOK_CLIENT_ID": "app", "OUTLOOK_CLIENT_SECRET": "settings-secret",
                                  "CREDENTIAL_ENCRYPTION_KEY": Fernet.generate_key().decode()})


def _refused(response) -> None:
    assert response.status_code == 503 and json.loads(response.get_body()) == REFUSED


def test_a_refused_start_fails_the_run_forgets_its_secret_and_a_new_start_works(settings):
    runtime, connection_id = Runtime(), f"refused-{uuid.uuid4().hex[:8]}"
    service = ExtractionService(runtime, settings=settings)
    body = {"user_upn": UPN, "config": {"outlook_client_secret": "request-secret"}}
    _refused(asyncio.run(respond(lambda: service.start(connection_id, body, "http://h"), 202)))

    row = JobStore(settings).get(connection_id)
    assert (row["status"], row["error"]) == (J.FAILED, START_FAILED)
    assert asyncio.run(service.status(connection_id))["status"] == J.FAILED
    assert row["credential"]["kind"] == "vault"
    with pytest.raises(MissingCredentials):  # the request's secret is not kept
        service.vault.credentials(row["credential"])

    runtime.down = False
    started = asyncio.run(respond(lambda: service.start(connection_id, body, "http://h"), 202))
    assert started.status_code == 202 and json.loads(started.get_body())["status"] == J.PENDING
    assert [instance for _, instance, _ in runtime.started] == [JobStore(settings).get(connection_id)["instance_id"]]


def test_a_refused_batch_start_fails_the_batch_and_every_run_of_it(settings):
    runtime = Runtime()
    service = BatchService(runtime, settings=settings)
    body = {"user_upns": [UPN, "bob@contoso.com"],
            "config": {"outlook_client_secret": "request-secret"}}
    _refused(asyncio.run(respond(lambda: service.start(body, "http://h"), 202)))

    (batch_id,) = runtime.refused
    status = asyncio.run(service.status(batch_id))
    assert status["status"] == J.FAILED
    assert [(u["status"], u["error"]["code"]) for u in status["users"]] == [(J.FAILED, "batch_failed")] * 2
    credential = JobStore(settings).get_batch(batch_id)["credential"]
    assert credential["kind"] == "vault"
    with pytest.raises(MissingCredentials):  # the request's secret is not kept
        service.vault.credentials(credential)
