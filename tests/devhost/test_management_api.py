"""The Durable management HTTP API: status codes and bodies as the real extension answers."""
from __future__ import annotations

import json


def test_check_status_response_points_at_working_management_urls(sample):
    resp = sample.http.post(sample.api("orchestrators/sequence/mgmt-1"), json=["z"])
    assert resp.status_code == 202
    assert resp.headers["Retry-After"] == "10"
    urls = resp.json()
    assert urls["id"] == "mgmt-1"
    assert resp.headers["Location"] == urls["statusQueryGetUri"]
    assert urls["statusQueryGetUri"].startswith(sample.host.url("runtime/webhooks/durabletask/instances/mgmt-1?"))
    assert set(urls) == {"id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "rewindPostUri",
                         "purgeHistoryDeleteUri", "restartPostUri", "suspendPostUri", "resumePostUri"}
    sample.wait_status("mgmt-1")
    status = sample.http.get(urls["statusQueryGetUri"])
    assert status.status_code == 200
    body = status.json()
    assert body["runtimeStatus"] == "Completed" and body["output"] == ["Hello z!"]
    assert set(body) == {"name", "instanceId", "runtimeStatus", "input", "customStatus", "output",
                         "createdTime", "lastUpdatedTime"}
    assert body["createdTime"].endswith("Z") and len(body["createdTime"]) == 20


def test_running_instance_status_is_202_with_location(sample):
    instance = sample.start("wait_event")
    sample.wait_status(instance, {"Running"})
    resp = sample.webhook("GET", f"instances/{instance}")
    assert resp.status_code == 202
    assert resp.headers["Retry-After"] == "5"
    assert f"/instances/{instance}?" in resp.headers["Location"]
    assert resp.json()["runtimeStatus"] == "Running"


def test_start_raise_terminate_through_webhooks(sample):
    start = sample.webhook("POST", "orchestrators/wait_event/hook-1", data=json.dumps({"k": 1}),
                           headers={"Content-Type": "application/json"})
    assert start.status_code == 202 and start.json()["id"] == "hook-1"
    sample.wait_status("hook-1", {"Running"})
    # A caller posting plain JSON to the webhook: the orchestrator gets it parsed once.
    raised = sample.webhook("POST", "instances/hook-1/raiseEvent/go", data='{"ok": true}',
                            headers={"Content-Type": "application/json"})
    assert raised.status_code == 202
    assert sample.wait_status("hook-1")["output"] == {"received": {"ok": True}, "type": "dict"}
    assert sample.webhook("POST", "instances/hook-1/raiseEvent/go", data="1").status_code == 410
    assert sample.webhook("POST", "instances/hook-1/suspend").status_code == 410


def test_unknown_orchestrator_is_400_with_exception_message(sample):
    resp = sample.webhook("POST", "orchestrators/no_such_thing", data="null")
    assert resp.status_code == 400
    assert resp.json()["ExceptionMessage"] == ("The function 'no_such_thing' doesn't exist, is disabled, "
                                              "or is not an orchestrator function.")
    # Through the SDK client the same message surfaces as an exception in the starter.
    through_app = sample.http.post(sample.api("orchestrators/no_such_thing/x1"))
    assert through_app.status_code == 500 and through_app.content == b""


def test_malformed_bodies_are_400_json(sample):
    bad_start = sample.webhook("POST", "orchestrators/sequence", data="{not json")
    assert bad_start.status_code == 400 and "JSON" in bad_start.json()["Message"]
    instance = sample.start("wait_event")
    bad_event = sample.webhook("POST", f"instances/{instance}/raiseEvent/go", data="{oops")
    assert bad_event.status_code == 400
    assert bad_event.json()["Message"] == "Only application/json request content is supported."
    bad_filter = sample.webhook("GET", "instances/", params={"runtimeStatus": "Sleeping"})
    assert bad_filter.status_code == 400 and "Sleeping" in bad_filter.json()["Message"]


def test_invalid_instance_ids_are_400(sample):
    too_long = sample.webhook("POST", f"orchestrators/sequence/{'x' * 257}", data="null")
    assert too_long.status_code == 400
    bad_chars = sample.webhook("POST", "orchestrators/sequence/a%23b", data="null")
    assert bad_chars.status_code == 400 and "not allowed" in bad_chars.json()["Message"]


def test_unknown_instance_ids_are_404(sample):
    for method, path in [("GET", "instances/nope"), ("POST", "instances/nope/raiseEvent/x"),
                         ("POST", "instances/nope/terminate"), ("POST", "instances/nope/suspend"),
                         ("POST", "instances/nope/resume"), ("DELETE", "instances/nope")]:
        resp = sample.webhook(method, path, data="null")
        assert resp.status_code == 404, (method, path, resp.status_code)
        assert resp.content == b""


def test_starting_an_active_instance_id_again_is_409(sample):
    instance = sample.start("wait_event")
    again = sample.webhook("POST", f"orchestrators/wait_event/{instance}", data="null")
    assert again.status_code == 409
    assert "already exists with status" in again.json()["Message"]


def test_finished_instance_id_can_be_started_again(sample):
    instance = sample.start("sequence", ["a"])
    sample.wait_status(instance)
    sample.start("sequence", ["b"], instance_id=instance)
    assert sample.wait_status(instance)["output"] == ["Hello b!"]


def test_list_filters_and_paging(sample):
    prefix = sample.new_id("list")
    done = [sample.start("sequence", ["q"], instance_id=f"{prefix}-done-{i}") for i in range(3)]
    waiting = sample.start("wait_event", instance_id=f"{prefix}-waiting")
    for instance in done:
        sample.wait_status(instance)
    sample.wait_status(waiting, {"Running"})
    everything = sample.webhook("GET", "instances/", params={"instanceIdPrefix": prefix}).json()
    assert sorted(i["instanceId"] for i in everything) == sorted(done + [waiting])
    running = sample.webhook("GET", "instances/", params={"instanceIdPrefix": prefix,
                                                          "runtimeStatus": "Running,Pending"}).json()
    assert [i["instanceId"] for i in running] == [waiting]
    page1 = sample.webhook("GET", "instances/", params={"instanceIdPrefix": prefix, "top": 2})
    token = page1.headers["x-ms-continuation-token"]
    page2 = sample.webhook("GET", "instances/", params={"instanceIdPrefix": prefix, "top": 2},
                           headers={"x-ms-continuation-token": token})
    assert "x-ms-continuation-token" not in page2.headers
    paged = [i["instanceId"] for i in page1.json() + page2.json()]
    assert sorted(paged) == sorted(done + [waiting]) and len(set(paged)) == 4


def test_purge_by_filter_removes_only_finished_instances(sample):
    prefix = sample.new_id("purge")
    finished = sample.start("sequence", ["p"], instance_id=f"{prefix}-a")
    active = sample.start("wait_event", instance_id=f"{prefix}-b")
    sample.wait_status(finished)
    sample.wait_status(active, {"Running"})
    # Purge by filter takes every finished instance created in the window; scope it by time.
    purged = sample.webhook("DELETE", "instances/", params={"runtimeStatus": "Completed",
                                                            "createdTimeFrom": "2000-01-01T00:00:00Z"})
    assert purged.status_code == 200 and purged.json()["instancesDeleted"] >= 1
    assert sample.webhook("GET", f"instances/{finished}").status_code == 404
    assert sample.webhook("GET", f"instances/{active}").status_code == 202
    refused = sample.webhook("DELETE", f"instances/{active}")
    assert refused.status_code == 412  # the extension's answer since 3.9.1 (test_purge_by_id.py)


def test_show_history_lists_events_in_order(sample):
    instance = sample.start("sequence", ["h"])
    sample.wait_status(instance)
    body = sample.webhook("GET", f"instances/{instance}",
                          params={"showHistory": "true", "showHistoryOutput": "true"}).json()
    kinds = [e["EventType"] for e in body["historyEvents"]]
    assert kinds == ["OrchestratorStarted", "ExecutionStarted", "TaskScheduled",
                     "OrchestratorStarted", "TaskCompleted", "ExecutionCompleted"]
    assert body["historyEvents"][4]["Result"] == "Hello h!"
