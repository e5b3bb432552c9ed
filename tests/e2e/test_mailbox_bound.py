"""Graph sees at most 4 requests in flight per mailbox however many instances run a run's lanes:
with devhost's two worker processes (each with its own process-local Graph limiter; a wave's 4
lanes go 2 to each, the least busy worker taking the next), one big mailbox is extracted with no
MailboxConcurrency answer from graphsim and Graph kept at its 4."""
from __future__ import annotations

import re

from tests.e2e.conftest import truth_ids

UPN = "erin@contoso.com"


def test_a_run_on_two_workers_never_exceeds_four_requests_per_mailbox(stack_factory):
    stack = stack_factory(mailboxes={UPN: 2500}, env={"GRAPH_PAGE_SIZE": "50"})
    assert len(stack.host.worker_pids()) == 2
    stack.sim.set_faults(latency_ms=120, concurrency_limit=4)
    stack.sim.reset_stats()
    connection = stack.start(UPN)
    final = stack.wait(connection, timeout=240)
    assert final["status"] == "completed", final
    ids = [e["id"] for e in stack.emails(connection)]
    assert len(ids) == len(set(ids)) and set(ids) == truth_ids(stack.sim, UPN)
    stats = stack.sim.stats()
    assert stats["throttled_by_reason"].get("MailboxConcurrency", 0) == 0
    assert stats["max_in_flight_by_mailbox"][UPN] == 4
    assert len(re.findall(r"Executed 'Functions\.extract_lane' \(Succeeded", stack.host.log_text())) >= 4
