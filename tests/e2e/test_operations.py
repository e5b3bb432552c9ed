"""Operating the service: health, the job list, removal of finished runs, structured run logs.

This module gets its own Azurite (the job list is global, and the health test stops it).
"""
from __future__ import annotations

import json
import re

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from devhost.azurite import start_azurite
from tests.e2e.conftest import truth_ids


@pytest.fixture(scope="module")
def private_azurite(tmp_path_factory):
    server = start_azurite(tmp_path_factory.mktemp("ops-azurite"), None)
    yield server
    server.stop()


@pytest.fixture
def storage_connection_string(private_azurite):
    return private_azurite.connection_string


def test_health_reports_each_dependency_and_503_when_storage_is_down(stack_factory, tmp_path):
    own = start_azurite(tmp_path / "azurite", None)
    try:
        stack = stack_factory(env={"AzureWebJobsStorage": own.connection_string})
        ok = stack.get("health")
        assert ok.status_code == 200
        body = ok.json()
        assert body["status"] == "ok" and body["version"] == "0.4.0" and "failing" not in body
        assert set(body["dependencies"]) == {"table_storage", "blob_storage", "durable"}
        assert all(d["status"] == "ok" and d["latency_ms"] >= 0 for d in body["dependencies"].values())
    finally:
        own.stop()
    down = stack.get("health", timeout=30)
    assert down.status_code == 503
    body = down.json()
    assert body["status"] == "unavailable"
    assert {"table_storage", "blob_storage"} <= set(body["failing"])
    assert body["dependencies"]["table_storage"]["status"] == "error"
    assert "Traceback" not in down.text


def _jobs(stack, **params) -> list[dict]:
    return stack.collect("jobs", "jobs", **params)


def test_job_list_is_newest_first_filtered_and_paged(stack):
    singles = [stack.start("bob@contoso.com") for _ in range(3)]
    for connection in singles:
        stack.wait(connection)
    batch = stack.post("emails/extract/batch/start", {"user_upns": ["bob@contoso.com", "alice@contoso.com"]}).json()
    stack.wait_batch(batch["batch_id"])
    everything = _jobs(stack, limit=2)
    assert [j["id"] for j in everything] == [batch["batch_id"], *reversed(singles)]
    assert [j["created_at"] for j in everything] == sorted((j["created_at"] for j in everything), reverse=True)
    assert everything[0] == {**everything[0], "kind": "batch", "status": "completed", "users": 2, "user_upn": None}
    assert everything[0]["messages_extracted"] == 40 + 150
    assert everything[1]["status_url"].endswith(f"/api/emails/extract/status/{singles[-1]}")
    assert [j["id"] for j in _jobs(stack, kind="single")] == list(reversed(singles))
    assert [j["id"] for j in _jobs(stack, kind="batch", status="completed")] == [batch["batch_id"]]
    assert _jobs(stack, status="paused") == []
    for params, message in [({"status": "sleeping"}, "status must be one of"), ({"kind": "all"}, "kind must be"),
                            ({"limit": "0"}, "limit must be"), ({"cursor": "zzz"}, "cursor is not")]:
        bad = stack.get("jobs", params=params)
        assert bad.status_code == 400 and bad.json()["error"]["message"].startswith(message)


def _messages_in(connection_string: str, connection: str) -> int:
    table = TableServiceClient.from_connection_string(connection_string).get_table_client("MailMessages")
    return len(list(table.query_entities(f"PartitionKey eq '{connection}'")))


def _blobs_in(connection_string: str, connection: str) -> int:
    container = BlobServiceClient.from_connection_string(connection_string).get_container_client("mail")
    return len(list(container.list_blobs(name_starts_with=f"{connection}/")))


def test_delete_refuses_active_runs_then_removes_job_history_and_optionally_data(stack, storage_connection_string):
    stack.sim.set_faults(latency_ms=300)
    active = stack.start("alice@contoso.com")
    refused = stack.http.delete(stack.url(f"emails/extract/{active}"))
    assert refused.status_code == 409 and "cancel it first" in refused.json()["error"]["message"]
    stack.post(f"emails/extract/cancel/{active}")
    stack.sim.set_faults(latency_ms=0)

    keep = stack.start("bob@contoso.com")
    stack.wait(keep)
    instance = [i for i in stack.http.get(stack.host.url("runtime/webhooks/durabletask/instances/"),
                                          params={"instanceIdPrefix": "extract-"}).json()]
    assert instance
    kept = stack.http.delete(stack.url(f"emails/extract/{keep}"))
    assert kept.status_code == 200
    assert kept.json() == {"connection_id": keep, "deleted": {"job": True, "orchestrations": 1, "messages": 0, "blobs": 0}}
    assert stack.get(f"emails/extract/status/{keep}").status_code == 404
    assert _messages_in(storage_connection_string, keep) == 40  # data kept without purge_data

    purge = stack.start("bob@contoso.com")
    stack.wait(purge)
    packs = _blobs_in(storage_connection_string, purge)  # one body pack per stored page
    assert packs >= 1
    purged = stack.http.delete(stack.url(f"emails/extract/{purge}"), params={"purge_data": "true"})
    assert purged.json() == {"connection_id": purge, "deleted": {"job": True, "orchestrations": 1,
                                                                 "messages": 40, "blobs": packs}}
    assert _messages_in(storage_connection_string, purge) == 0 and _blobs_in(storage_connection_string, purge) == 0
    assert stack.http.delete(stack.url(f"emails/extract/{purge}")).status_code == 404
    bad = stack.http.delete(stack.url(f"emails/extract/{active}"), params={"purge_data": "yes"})
    assert bad.status_code == 400 and bad.json()["error"]["message"] == "purge_data must be true or false"


def test_delete_batch_removes_every_run_and_its_data(stack, storage_connection_string):
    batch = stack.post("emails/extract/batch/start", {"user_upns": ["bob@contoso.com", "alice@contoso.com"]}).json()
    batch_id = batch["batch_id"]
    stack.wait_batch(batch_id)
    packs = sum(_blobs_in(storage_connection_string, u["connection_id"]) for u in batch["users"])
    assert packs >= 2
    deleted = stack.http.delete(stack.url(f"emails/extract/batch/{batch_id}"), params={"purge_data": "true"})
    assert deleted.status_code == 200
    assert deleted.json() == {"batch_id": batch_id, "deleted": {"jobs": 2, "orchestrations": 3,
                                                                "messages": 190, "blobs": packs}}
    assert stack.get(f"emails/extract/batch/status/{batch_id}").status_code == 404
    for user in batch["users"]:
        assert stack.get(f"emails/extract/status/{user['connection_id']}").status_code == 404
        assert _messages_in(storage_connection_string, user["connection_id"]) == 0
        assert _blobs_in(storage_connection_string, user["connection_id"]) == 0


def test_each_state_change_is_one_structured_log_line_without_content(stack):
    stack.sim.set_faults(latency_ms=150)
    paused = stack.start("alice@contoso.com")
    stack.wait(paused, statuses=("in_progress",))
    stack.post(f"emails/extract/pause/{paused}")
    stack.wait(paused, statuses=("paused",))
    stack.post(f"emails/extract/continue/{paused}")
    cancelled = stack.start("bob@contoso.com")
    stack.post(f"emails/extract/cancel/{cancelled}")
    stack.sim.set_faults(latency_ms=0)
    stack.wait(paused)
    failed = stack.start("ghost@contoso.com")
    stack.wait(failed)
    events: dict[str, list[dict]] = {}
    for match in re.finditer(r"(run\.[a-z_]+) (\{.*\})$", stack.host.log_text(), re.MULTILINE):
        events.setdefault(match.group(1), []).append(json.loads(match.group(2)))
    by_connection = {name: {e.get("connection_id") for e in found} for name, found in events.items()}
    assert {"run.started", "run.page_stored", "run.pause_requested", "run.paused", "run.resumed",
            "run.completed"} <= set(by_connection)
    for name in ("run.started", "run.paused", "run.resumed", "run.completed"):
        assert paused in by_connection[name]
    assert cancelled in by_connection["run.cancelled"] and failed in by_connection["run.failed"]
    page = next(e for e in events["run.page_stored"] if e["connection_id"] == paused)
    assert set(page) == {"connection_id", "run_id", "mailbox", "folder", "messages", "total", "duration_ms"}
    subjects = [e["subject"] for e in stack.emails(paused)]
    assert not any(subject and subject in stack.host.log_text() for subject in subjects)
    assert {e["id"] for e in stack.emails(paused)} == truth_ids(stack.sim, "alice@contoso.com")
