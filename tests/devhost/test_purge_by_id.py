"""Purging one instance by id answers as the Durable extension does (docs/durable-host.md).

HttpApiHandler.HandleDeleteHistoryByIdRequestAsync (Durable 3.9.1+, which extension bundles 4.x
resolve): unknown id 404; an orchestration that is not Completed, Failed, Terminated or Canceled
412 with the message as a JSON string, the instance left as it is; a finished one 200
{"instancesDeleted": 1}; an '@' id (an entity's) is not looked up, so unknown it answers 200 with 0.
The SDK's client (DurableOrchestrationClient.purge_instance_history) maps 200 and 404 and raises
"The operation failed with an unexpected status code 412" for the refusal.
"""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import azure.durable_functions as df
from azure.durable_functions.models.utils import http_utils

from devhost.durable.client_binding import WEBHOOK_PATH, client_binding_json
from tests.devhost.conftest import QUIET_TIMER, SampleClient

PURGE_APP = Path(__file__).parent / "purge_app"
REFUSAL = ("Only orchestrations in a terminal state can be purged, but the orchestration with instance ID {id} "
           "has status {status}")


def _sdk_purges(sample, *instance_ids: str) -> list[int | str]:
    """purge_instance_history through the SDK's client as an app gets it (its management calls sent
    to devhost's webhook root): the count deleted, or the message of the Exception it raises."""
    binding = json.loads(client_binding_json(sample.host.url("").rstrip("/"), "hub", None, "unused"))
    binding["rpcBaseUrl"] = sample.host.url(WEBHOOK_PATH) + "/"

    async def run() -> list[int | str]:
        client = df.DurableOrchestrationClient(json.dumps(binding))
        answers: list[int | str] = []
        try:
            for instance_id in instance_ids:
                try:
                    answers.append((await client.purge_instance_history(instance_id)).instances_deleted)
                except Exception as exc:  # the SDK raises a plain Exception for statuses it does not map
                    answers.append(str(exc))
        finally:  # the SDK keeps one aiohttp session per process: not across event loops
            await http_utils._handle_request_error()
        return answers
    return asyncio.run(run())


def test_running_instance_is_refused_with_412_and_left_running(sample):
    instance = sample.start("wait_event")
    sample.wait_status(instance, {"Running"})
    refused = sample.webhook("DELETE", f"instances/{instance}")
    assert refused.status_code == 412
    assert refused.headers["Content-Type"].startswith("application/json")
    assert refused.json() == REFUSAL.format(id=instance, status="Running")  # a JSON string, not an object
    assert _sdk_purges(sample, instance) == ["The operation failed with an unexpected status code 412"]
    assert sample.webhook("GET", f"instances/{instance}").json()["runtimeStatus"] == "Running"
    sample.raise_event(instance, "go", 1)
    assert sample.wait_status(instance)["runtimeStatus"] == "Completed"  # still whole: it finishes normally


def test_suspended_instance_is_refused_too(sample):
    instance = sample.start("wait_event")
    sample.wait_status(instance, {"Running"})
    assert sample.control(instance, "suspend").status_code == 202
    sample.wait_status(instance, {"Suspended"})
    refused = sample.webhook("DELETE", f"instances/{instance}")
    assert refused.status_code == 412 and refused.json() == REFUSAL.format(id=instance, status="Suspended")


def test_finished_instances_are_purged_once_then_unknown(sample):
    completed = sample.start("sequence", ["p"])
    failed = sample.start("failing")
    terminated = sample.start("wait_event")
    sample.wait_status(terminated, {"Running"})
    assert sample.control(terminated, "terminate").status_code == 202
    for instance, status in [(completed, "Completed"), (failed, "Failed"), (terminated, "Terminated")]:
        assert sample.wait_status(instance)["runtimeStatus"] == status
    purged = sample.webhook("DELETE", f"instances/{completed}")
    assert purged.status_code == 200 and purged.json() == {"instancesDeleted": 1}
    assert _sdk_purges(sample, failed, terminated) == [1, 1]
    for instance in (completed, failed, terminated):
        assert sample.webhook("GET", f"instances/{instance}").status_code == 404
    again = sample.webhook("DELETE", f"instances/{completed}")
    assert again.status_code == 404 and again.content == b""
    assert _sdk_purges(sample, terminated) == [0]  # the SDK maps 404 to 0 deleted


def test_unknown_ids_are_404_but_entity_ids_are_200_with_zero(sample):
    unknown = sample.webhook("DELETE", f"instances/{sample.new_id('nobody')}")
    assert unknown.status_code == 404
    entity = sample.webhook("DELETE", "instances/@counter@nobody")
    assert entity.status_code == 200 and entity.json() == {"instancesDeleted": 0}


def test_a_terminate_not_processed_yet_is_still_running_and_refused(devhost_factory):
    """Terminate while an episode is under way: the terminate waits in the instance's queue and the
    instance says Running, so the purge is refused and nothing is deleted; once the terminate has
    been processed the same purge succeeds."""
    app = SampleClient(devhost_factory(PURGE_APP, env=QUIET_TIMER))
    instance = app.new_id("slow")
    started = app.webhook("POST", f"orchestrators/slow_episodes/{instance}", json=4)
    assert started.status_code == 202

    def status() -> str | None:
        resp = app.webhook("GET", f"instances/{instance}")
        return resp.json()["runtimeStatus"] if resp.status_code in (200, 202) else None
    deadline = time.monotonic() + 30
    while status() != "Running":
        assert time.monotonic() < deadline, "the instance never started"
        time.sleep(0.1)
    time.sleep(1)  # the activity is done: the second episode sleeps 4 s in its replay
    assert app.webhook("POST", f"instances/{instance}/terminate", params={"reason": "cancelled"}).status_code == 202
    refused = app.webhook("DELETE", f"instances/{instance}")
    assert (refused.status_code, refused.json()) == (412, REFUSAL.format(id=instance, status="Running"))
    assert status() == "Running"
    deadline = time.monotonic() + 30
    while status() != "Terminated":
        assert time.monotonic() < deadline, "the terminate was never processed"
        time.sleep(0.2)
    purged = app.webhook("DELETE", f"instances/{instance}")
    assert (purged.status_code, purged.json()) == (200, {"instancesDeleted": 1})
    assert status() is None
