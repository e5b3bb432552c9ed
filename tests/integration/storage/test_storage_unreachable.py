"""Routes answer 503 `storage_unavailable` (JSON, Retry-After), never 500, when Azure Storage cannot
be reached: the real storage SDK is pointed at a port nothing listens on, so the exceptions are
the ones a dropped or refused connection raises in production."""
from __future__ import annotations

import asyncio
import json
import socket

import pytest
from azure.core.exceptions import (HttpResponseError, ResourceNotFoundError, ServiceRequestError,
                                   ServiceResponseError)

from devhost.azurite import DEV_ACCOUNT, DEV_KEY
from http_triggers.responses import respond, storage_unavailable
from mailextract.extraction.service import ExtractionService
from mailextract.settings import Settings


class NoOrchestrations:
    """The durable client port; these requests never get far enough to use it."""

    async def start(self, orchestrator, instance_id, payload):
        raise AssertionError("no orchestration may start when the run could not be stored")

    async def raise_event(self, instance_id, name, payload=None):
        raise AssertionError("unexpected event")

    async def terminate(self, instance_id, reason):
        raise AssertionError("unexpected terminate")

    async def runtime_status(self, instance_id):
        return None  # no earlier instance: nothing to purge

    async def purge(self, instance_id):
        raise AssertionError("not expected")


@pytest.fixture
def service() -> ExtractionService:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}/{DEV_ACCOUNT}"
    connection = (f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
                  f"BlobEndpoint={endpoint};TableEndpoint={endpoint};")
    settings = Settings.from_mapping({"AzureWebJobsStorage": connection, "TENANT_ID": "tenant",
                                      "OUTLOOK_CLIENT_ID": "app", "OUTLOOK_CLIENT_SECRET": "not-a-secret"})
    return ExtractionService(NoOrchestrations(), settings=settings)


def _unavailable(response) -> None:
    assert response.status_code == 503
    assert response.mimetype == "application/json"
    assert response.headers["Retry-After"] == "5"
    assert json.loads(response.get_body()) == {"error": {
        "code": "storage_unavailable", "message": "Azure Storage could not be reached; retry the request later"}}


def test_reading_a_run_while_storage_is_unreachable_is_503(service):
    _unavailable(asyncio.run(respond(lambda: service.status("any-connection"))))


def test_starting_a_run_while_storage_is_unreachable_is_503_and_starts_nothing(service):
    _unavailable(asyncio.run(respond(lambda: service.start("c1", {"user_upn": "a@contoso.com"}, "http://h"), 202)))


def test_only_transient_storage_failures_count_as_unavailable():
    def answered(status: int) -> HttpResponseError:
        error = HttpResponseError(message=f"status {status}")
        error.status_code = status
        return error

    assert storage_unavailable(ServiceRequestError("connection refused"))
    assert storage_unavailable(ServiceResponseError("connection dropped"))
    assert storage_unavailable(answered(503)) and storage_unavailable(answered(500))
    assert not storage_unavailable(answered(400)) and not storage_unavailable(answered(409))
    assert not storage_unavailable(ResourceNotFoundError("missing"))
    assert not storage_unavailable(ValueError("a defect, not an outage"))
