"""A sync requested the moment the previous one shows `completed` is accepted and runs, three times
in a row (the previous orchestration may still be ending: each sync has an instance of its own)."""
from __future__ import annotations

from tests.e2e.conftest import truth_ids
from tests.support.devhost_fixtures import wait_for


def test_syncs_started_right_after_each_other_each_complete(stack):
    created = stack.post("connections", {"id": "back-to-back", "mailboxes": ["bob@contoso.com"],
                                         "schedule": "daily"})
    assert created.status_code == 201, created.text
    for _ in range(3):
        started = stack.post("connections/back-to-back/sync")
        assert started.status_code == 202, started.text
        # as a client that syncs again the moment it reads `completed`
        final = wait_for(lambda: (s := stack.status("back-to-back"))["status"] in ("completed", "failed") and s,
                         timeout=60, interval=0.005, message="the sync to end")
        assert final["status"] == "completed", final
    assert {e["id"] for e in stack.emails("back-to-back")} == truth_ids(stack.sim, "bob@contoso.com")
    view = stack.get("connections/back-to-back").json()
    assert view["last_sync_status"] == "completed"


def test_a_new_run_of_a_connection_purges_the_history_of_the_one_before(stack):
    created = stack.post("connections", {"id": "tidy", "mailboxes": ["bob@contoso.com"], "schedule": "daily"})
    assert created.status_code == 201, created.text

    def sync_instances() -> list[str]:
        listed = stack.http.get(stack.host.url("runtime/webhooks/durabletask/instances/"),
                                params={"instanceIdPrefix": "sync-"})
        return sorted(i["instanceId"] for i in listed.json())
    assert stack.post("connections/tidy/sync").status_code == 202
    assert stack.wait("tidy")["status"] == "completed"
    [first] = wait_for(lambda: (ids := sync_instances()) and all(
        stack.http.get(stack.host.url(f"runtime/webhooks/durabletask/instances/{i}")).json()["runtimeStatus"]
        == "Completed" for i in ids) and ids, message="the first sync's orchestration to end")
    assert stack.post("connections/tidy/sync").status_code == 202
    assert stack.wait("tidy")["status"] == "completed"
    [second] = sync_instances()
    assert second != first
    assert stack.http.get(stack.host.url(f"runtime/webhooks/durabletask/instances/{first}")).status_code == 404
