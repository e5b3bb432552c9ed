"""Batch extraction end to end: per-user outcomes, one failing mailbox, pause/continue, cancel."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import FINISHED, truth_ids
from tests.support.devhost_fixtures import wait_for


def _start_batch(stack, upns: list[str]) -> dict:
    resp = stack.post("emails/extract/batch/start", {"user_upns": upns})
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["batch_id"].startswith("batch_") and body["status"] == "pending"
    assert [u["user_upn"] for u in body["users"]] == upns
    return body


def test_batch_with_one_unknown_and_one_denied_mailbox(stack_factory):
    stack = stack_factory(mailboxes={"alice@contoso.com": 90, "bob@contoso.com": 40, "erin@contoso.com": 10})
    stack.sim.deny(stack.sim.client_id, "erin@contoso.com")
    upns = ["alice@contoso.com", "ghost@contoso.com", "bob@contoso.com", "erin@contoso.com"]
    started = _start_batch(stack, upns)
    final = stack.wait_batch(started["batch_id"])
    assert final["status"] == "completed"
    by_user = {u["user_upn"]: u for u in final["users"]}
    assert [by_user[u]["status"] for u in upns] == ["completed", "failed", "completed", "failed"]
    assert by_user["ghost@contoso.com"]["error"]["code"] == "mailbox_not_found"
    assert by_user["erin@contoso.com"]["error"]["code"] == "access_denied"
    assert "Access is denied" in by_user["erin@contoso.com"]["error"]["message"]
    assert final["totals"] == {"users": 4, "pending": 0, "in_progress": 0, "pausing": 0, "paused": 0,
                               "completed": 2, "cancelled": 0, "failed": 2, "messages_extracted": 130}
    result = stack.get(f"emails/extract/batch/result/{started['batch_id']}").json()
    for user in result["users"]:
        if user["status"] == "completed":
            assert user["emails_url"].endswith(f"/api/emails/extract/result/{user['connection_id']}")
            assert {e["id"] for e in stack.emails(user["connection_id"])} == truth_ids(stack.sim, user["user_upn"])


@pytest.fixture
def slow_batch(stack_factory):
    mailboxes = {f"user{i}@contoso.com": 160 for i in range(4)}
    stack = stack_factory(mailboxes=mailboxes, env={"EXTRACTION_BATCH_PARALLELISM": "2"})
    stack.sim.set_faults(latency_ms=120)
    return stack, list(mailboxes)


def test_batch_runs_at_most_the_configured_number_at_once(slow_batch):
    stack, upns = slow_batch
    batch_id = _start_batch(stack, upns)["batch_id"]
    seen_active = 0
    while (status := stack.batch_status(batch_id))["status"] not in FINISHED:
        seen_active = max(seen_active, status["totals"]["in_progress"])
        assert status["totals"]["in_progress"] <= 2
    assert status["status"] == "completed" and seen_active == 2
    for user in status["users"]:
        assert {e["id"] for e in stack.emails(user["connection_id"])} == truth_ids(stack.sim, user["user_upn"])


def test_batch_pause_and_continue(slow_batch):
    stack, upns = slow_batch
    batch_id = _start_batch(stack, upns)["batch_id"]
    wait_for(lambda: stack.batch_status(batch_id)["totals"]["messages_extracted"] >= 60, timeout=60,
             message="some messages stored")
    assert stack.post(f"emails/extract/batch/pause/{batch_id}").json() == {"batch_id": batch_id, "status": "pausing"}
    paused = stack.wait_batch(batch_id, statuses=("paused",), timeout=30)
    assert paused["totals"]["in_progress"] == 0
    assert stack.batch_status(batch_id)["totals"]["messages_extracted"] == paused["totals"]["messages_extracted"]
    assert stack.post(f"emails/extract/batch/pause/{batch_id}").status_code == 409
    assert stack.post(f"emails/extract/batch/continue/{batch_id}").status_code == 202
    final = stack.wait_batch(batch_id)
    assert final["status"] == "completed"
    assert [u["status"] for u in final["users"]] == ["completed"] * 4
    for user in final["users"]:
        assert {e["id"] for e in stack.emails(user["connection_id"])} == truth_ids(stack.sim, user["user_upn"])


def test_batch_cancel_ends_the_batch_and_every_run(slow_batch):
    stack, upns = slow_batch
    batch_id = _start_batch(stack, upns)["batch_id"]
    wait_for(lambda: stack.batch_status(batch_id)["totals"]["messages_extracted"] >= 30, timeout=60,
             message="some messages stored")
    cancelled = stack.post(f"emails/extract/batch/cancel/{batch_id}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    status = stack.batch_status(batch_id)
    assert status["status"] == "cancelled"
    assert {u["status"] for u in status["users"]} <= {"cancelled", "completed"}
    assert "cancelled" in {u["status"] for u in status["users"]}
    # No orchestration of the batch keeps running: the batch and each run were terminated.
    running = stack.http.get(stack.host.url("runtime/webhooks/durabletask/instances/"),
                             params={"instanceIdPrefix": batch_id, "runtimeStatus": "Running,Pending"}).json()
    assert running == []
    assert stack.post(f"emails/extract/batch/continue/{batch_id}").status_code == 409
