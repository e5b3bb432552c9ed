"""Routes stay responsive while Graph does not answer: sixteen connection tests waiting on a Graph
whose every answer takes ten minutes hold none of the threads the other routes need, health stays
`ok`, and each test answers on its own deadline naming the mailbox Graph did not answer for."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

WAITING_TESTS = 16


def test_connection_tests_waiting_on_a_silent_graph_delay_no_other_route(stack_factory):
    upns = [f"user{i:02d}@contoso.com" for i in range(WAITING_TESTS)]
    stack = stack_factory(mailboxes={upn: 1 for upn in upns}, env={"GRAPH_REQUEST_TIMEOUT_SECONDS": "600"})
    stack.sim.set_faults(latency_ms=600_000)  # Entra answers, Graph does not
    for index, upn in enumerate(upns):
        created = stack.post("connections", {"id": f"slow-graph-{index}", "mailboxes": [upn], "schedule": "daily"})
        assert created.status_code == 201, created.text
    answered = threading.Event()

    def connection_test(index: int):
        resp = stack.http.post(stack.url(f"connections/slow-graph-{index}/test"), timeout=120)
        answered.set()
        return resp
    with ThreadPoolExecutor(WAITING_TESTS) as pool:
        tests = [pool.submit(connection_test, index) for index in range(WAITING_TESTS)]
        # every test is waiting on Graph now (the sim issues the token; Graph never answers)
        for _ in range(3):
            health = stack.get("health")
            jobs = stack.get("jobs")
            status = stack.get("emails/extract/status/no-such-run")
            result = stack.get("emails/extract/result/no-such-run")
            assert not answered.is_set(), "a connection test answered before the other routes were tried"
            assert (health.status_code, health.json()["status"]) == (200, "ok"), health.text
            assert jobs.status_code == 200 and status.status_code == 404 and result.status_code == 404
        bodies = [future.result().json() for future in tests]
    for index, body in enumerate(bodies):
        assert (body["id"], body["ok"]) == (f"slow-graph-{index}", False)
        [mailbox] = body["mailboxes"]
        assert (mailbox["user_upn"], mailbox["ok"], mailbox["error"]["code"]) == (upns[index], False, "graph_timeout")
