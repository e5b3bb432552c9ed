"""A step that fails transiently (Graph unavailable beyond the client's own bounded wait) is
called again after a durable timer: the status route shows the retry while it waits, and the run
still ends with exactly the mailbox's messages. A step failing every attempt fails the run."""
from __future__ import annotations

from tests.e2e.conftest import truth_ids
from tests.support.devhost_fixtures import wait_for

UPN = "dave@contoso.com"
# The Graph client gives up on a 503 storm after 1 s, so the step itself fails.
QUICK_GIVE_UP = {"GRAPH_MAX_TOTAL_WAIT_SECONDS": "1"}


def test_a_failed_step_is_retried_visibly_and_the_run_loses_nothing(stack_factory):
    stack = stack_factory(mailboxes={UPN: 300}, env=QUICK_GIVE_UP)
    stack.sim.set_faults(latency_ms=100)
    connection = stack.start(UPN)
    wait_for(lambda: stack.status(connection)["progress"]["messages_extracted"] >= 50, timeout=60,
             message="50 messages stored")
    stack.sim.set_faults(error_rate=1.0)  # every Graph request answers 503 or 504
    waiting = wait_for(lambda: (s := stack.status(connection)).get("retries") and s, timeout=60,
                       message="a retry shown in the status")
    stack.sim.set_faults(error_rate=0.0)
    last = waiting["retries"]["last"]
    assert waiting["status"] == "in_progress" and waiting["retries"]["count"] >= 1
    assert (last["step"], last["attempt"], last["max_attempts"]) == ("extract_lane", 2, 4)
    assert "GraphUnavailable" in last["error"] and last["retry_at"] > waiting["created_at"]
    final = stack.wait(connection, timeout=120)
    assert final["status"] == "completed", final
    ids = [e["id"] for e in stack.emails(connection)]
    assert len(ids) == len(set(ids)) and set(ids) == truth_ids(stack.sim, UPN)
    assert final["progress"]["messages_extracted"] == len(ids)
    assert final["retries"]["count"] >= waiting["retries"]["count"]


def test_a_step_failing_every_attempt_fails_the_run_with_its_reason(stack_factory):
    stack = stack_factory(mailboxes={UPN: 60}, env=QUICK_GIVE_UP)
    stack.sim.set_faults(error_rate=1.0)  # the run cannot even list the mailbox's folders
    connection = stack.start(UPN)
    final = stack.wait(connection, timeout=120)  # 5 + 10 + 20 s of retries
    assert final["status"] == "failed", final
    assert final["error"]["code"] == "step_failed" and "GraphUnavailable" in final["error"]["message"]
    assert final["retries"]["count"] == 3
    assert {k: final["retries"]["last"][k] for k in ("step", "attempt", "max_attempts")} == {
        "step": "begin_extraction", "attempt": 4, "max_attempts": 4}
