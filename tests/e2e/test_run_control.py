"""Pause, continue, cancel and crashes: the final message set is always exactly the mailbox."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import truth_ids
from tests.support.devhost_fixtures import wait_for

UPN = "carol@contoso.com"


@pytest.fixture
def slow_stack(stack_factory):
    """A mailbox of 20+ pages at 150 ms each: long enough to pause, continue and crash mid-run."""
    stack = stack_factory(mailboxes={UPN: 500})
    stack.sim.set_faults(latency_ms=150)
    return stack


def _mid_run(stack, connection: str, at_least: int = 50) -> None:
    wait_for(lambda: stack.status(connection)["progress"]["messages_extracted"] >= at_least,
             timeout=60, message=f"{at_least} messages stored")


def _assert_exact(stack, connection: str) -> None:
    final = stack.wait(connection)
    assert final["status"] == "completed", final
    ids = [e["id"] for e in stack.emails(connection)]
    assert len(ids) == len(set(ids)), "duplicates in the result"
    assert set(ids) == truth_ids(stack.sim, UPN)
    assert final["progress"]["messages_extracted"] == len(ids)


def test_pause_and_continue_three_times_gives_the_same_messages(slow_stack):
    stack = slow_stack
    connection = stack.start(UPN)
    for round_ in range(3):
        _mid_run(stack, connection, at_least=40 * (round_ + 1))
        paused = stack.post(f"emails/extract/pause/{connection}")
        assert paused.status_code == 202 and paused.json() == {"connection_id": connection, "status": "pausing"}
        status = stack.wait(connection, statuses=("paused",), timeout=30)
        frozen = status["progress"]["messages_extracted"]
        assert stack.status(connection)["progress"]["messages_extracted"] == frozen  # nothing moves while paused
        again = stack.post(f"emails/extract/pause/{connection}")
        assert again.status_code == 409 and again.json()["error"]["code"] == "job_conflict"
        resumed = stack.post(f"emails/extract/continue/{connection}")
        assert resumed.status_code == 202 and resumed.json()["status"] == "in_progress"
    _assert_exact(stack, connection)


def test_continue_while_still_pausing_resumes(slow_stack):
    stack = slow_stack
    connection = stack.start(UPN)
    _mid_run(stack, connection)
    assert stack.post(f"emails/extract/pause/{connection}").status_code == 202
    assert stack.post(f"emails/extract/continue/{connection}").status_code == 202
    _assert_exact(stack, connection)


def test_cancel_keeps_what_was_stored_and_refuses_further_control(slow_stack):
    stack = slow_stack
    connection = stack.start(UPN)
    _mid_run(stack, connection)
    cancelled = stack.post(f"emails/extract/cancel/{connection}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    stored = {e["id"] for e in stack.emails(connection)}
    assert stored and stored < truth_ids(stack.sim, UPN)
    assert stack.status(connection)["status"] == "cancelled"
    for action in ("pause", "continue", "cancel"):
        resp = stack.post(f"emails/extract/{action}/{connection}")
        assert resp.status_code == 409
        assert "cancelled" in resp.json()["error"]["message"]


def test_kill_mid_run_then_restart_gives_the_same_messages(slow_stack):
    stack = slow_stack
    connection = stack.start(UPN)
    _mid_run(stack, connection, at_least=100)
    stack.restart()
    _assert_exact(stack, connection)


def test_kill_while_paused_then_continue_gives_the_same_messages(slow_stack):
    stack = slow_stack
    connection = stack.start(UPN)
    _mid_run(stack, connection)
    stack.post(f"emails/extract/pause/{connection}")
    stack.wait(connection, statuses=("paused",), timeout=30)
    stack.restart()
    assert stack.status(connection)["status"] == "paused"
    assert stack.post(f"emails/extract/continue/{connection}").status_code == 202
    _assert_exact(stack, connection)


def test_start_while_active_is_409_and_after_completion_starts_a_new_run(slow_stack):
    stack = slow_stack
    connection = stack.start(UPN)
    again = stack.post(f"emails/extract/start/{connection}", {"user_upn": UPN})
    assert again.status_code == 409
    assert again.json()["error"]["message"].endswith("already has a run that is pending") or \
        "already has a run that is" in again.json()["error"]["message"]
    _assert_exact(stack, connection)
    stack.sim.set_faults(latency_ms=0)
    stack.start(UPN, connection_id=connection)  # a new run: same rows updated in place
    _assert_exact(stack, connection)
