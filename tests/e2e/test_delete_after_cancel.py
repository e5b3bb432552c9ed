"""Deleting runs whose orchestration has not ended yet, over real HTTP (devhost + Azurite + graphsim).

A run's row says finished a moment before its orchestration does: a cancel marks the row cancelled
and asks for a terminate, which the orchestration takes at its next episode; a completing run's
last step marks the row completed before the orchestration returns. The delete routes wait for the
orchestration to end, then purge it: a delete right after a cancel answers 200 and leaves no
history, and an orchestration that is still going is never purged (http_triggers/operations.py,
docs/durable-host.md).
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import requests
from azure.data.tables import TableServiceClient, UpdateMode

from tests.support.devhost_fixtures import wait_for


def _webhook(stack, method: str, path: str, **kwargs) -> requests.Response:
    return stack.http.request(method, stack.host.url(f"runtime/webhooks/durabletask/{path}"), **kwargs)


def _instances(stack, prefix: str) -> list[dict]:
    resp = _webhook(stack, "GET", "instances/", params={"instanceIdPrefix": prefix})
    assert resp.status_code == 200, resp.text
    return resp.json()


def _run_instance(stack, connection_id: str) -> str:
    """The instance id of the connection's run (its orchestration's input names the connection)."""
    def found():
        return next((i["instanceId"] for i in _instances(stack, "extract-")
                     if (i.get("input") or {}).get("connection_id") == connection_id), None)
    return wait_for(found, timeout=30, message=f"the orchestration of {connection_id}")


def _runtime_status(stack, instance_id: str) -> str | None:
    resp = _webhook(stack, "GET", f"instances/{instance_id}")
    assert resp.status_code in (200, 202, 404), resp.text
    return None if resp.status_code == 404 else resp.json()["runtimeStatus"]


def test_delete_right_after_a_cancel_answers_200_and_leaves_no_history(stack):
    stack.sim.set_faults(latency_ms=300)
    connection = stack.start("alice@contoso.com")
    stack.wait(connection, statuses=("in_progress",))
    instance = _run_instance(stack, connection)
    assert stack.post(f"emails/extract/cancel/{connection}").status_code == 200
    deleted = stack.http.delete(stack.url(f"emails/extract/{connection}"), params={"purge_data": "true"},
                                timeout=90)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["deleted"]["orchestrations"] == 1
    assert _runtime_status(stack, instance) is None
    assert stack.get(f"emails/extract/status/{connection}").status_code == 404


def test_delete_waits_for_an_orchestration_still_going_and_purges_it_only_once_ended(stack, storage_connection_string):
    stack.sim.set_faults(latency_ms=300)
    connection = stack.start("alice@contoso.com")
    stack.wait(connection, statuses=("in_progress",))
    instance = _run_instance(stack, connection)
    # Hold the orchestration (suspended, so it is neither Running on nor ended) and make its row say
    # finished, as between a run's last step and the end of its orchestration.
    assert _webhook(stack, "POST", f"instances/{instance}/suspend").status_code == 202
    wait_for(lambda: _runtime_status(stack, instance) == "Suspended", timeout=30, message="the suspend")
    jobs = TableServiceClient.from_connection_string(storage_connection_string).get_table_client("ExtractionJobs")
    jobs.update_entity({"PartitionKey": "job", "RowKey": connection, "status": "completed"}, mode=UpdateMode.MERGE)

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(requests.delete, stack.url(f"emails/extract/{connection}"), timeout=90)
        time.sleep(3)
        assert not pending.done(), pending.result().text
        assert _runtime_status(stack, instance) == "Suspended"  # not purged while it has not ended
        assert stack.get(f"emails/extract/status/{connection}").json()["status"] == "completed"  # row kept
        assert _webhook(stack, "POST", f"instances/{instance}/terminate",
                        params={"reason": "test"}).status_code == 202
        deleted = pending.result(timeout=60)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["deleted"]["orchestrations"] == 1
    assert _runtime_status(stack, instance) is None
    assert stack.get(f"emails/extract/status/{connection}").status_code == 404


def test_delete_of_a_batch_right_after_its_cancel_purges_every_orchestration(stack):
    stack.sim.set_faults(latency_ms=300)
    started = stack.post("emails/extract/batch/start", {"user_upns": ["alice@contoso.com", "bob@contoso.com"]})
    assert started.status_code == 202, started.text
    batch_id = started.json()["batch_id"]
    stack.wait_batch(batch_id, statuses=("in_progress",))
    wait_for(lambda: len(_instances(stack, batch_id)) >= 2, timeout=30, message="a run of the batch to start")
    assert stack.post(f"emails/extract/batch/cancel/{batch_id}").status_code == 200
    deleted = stack.http.delete(stack.url(f"emails/extract/batch/{batch_id}"), timeout=90)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["deleted"]["orchestrations"] >= 2  # the batch's and its runs' that had started
    assert _instances(stack, batch_id) == []
    assert stack.get(f"emails/extract/batch/status/{batch_id}").status_code == 404
