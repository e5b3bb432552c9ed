"""host.json's functionTimeout, enforced as the Functions host does: the invocation fails with the
host's message, the orchestration sees the activity fail with it, and the worker process that ran
it is recycled (a new one takes its place)."""
from __future__ import annotations

import pytest

from devhost.config import ConfigError, parse_function_timeout
from tests.devhost.conftest import QUIET_TIMER, SAMPLE_APP, SampleClient
from tests.support.devhost_fixtures import wait_for


def test_an_activity_past_the_timeout_fails_with_the_hosts_message_and_its_worker_is_recycled(devhost_factory,
                                                                                            tmp_path):
    host = devhost_factory(SAMPLE_APP, env={**QUIET_TIMER, "AzureFunctionsJobHost__functionTimeout": "00:00:02"})
    sample = SampleClient(host)
    marks = tmp_path / "marks.txt"
    instance = sample.start("call_once", {"activity": "marked_sleep", "input": {"path": str(marks), "seconds": 30}})
    ran_in = int(wait_for(lambda: marks.exists() and marks.read_text().split(), message="the activity to start")[0])
    status = sample.wait_status(instance, timeout=30)
    assert status["runtimeStatus"] == "Failed"
    assert ("Activity function 'marked_sleep' failed: Timeout value of 00:00:02 was exceeded by function: "
            "Functions.marked_sleep") in status["output"]
    log = host.log_text()
    assert "Timeout value of 00:00:02 exceeded by function 'Functions.marked_sleep'" in log
    assert "A function timeout has occurred. Restarting worker process executing invocationId" in log
    wait_for(lambda: len(host.worker_pids()) == 2 and ran_in not in host.worker_pids(),
             message="a new worker in place of the recycled one")
    assert marks.read_text().split() == [str(ran_in)]  # failed, not run again
    # the app goes on in the new worker
    again = sample.wait_status(sample.start("call_once", {"activity": "say_hello", "input": "x"}))
    assert again["runtimeStatus"] == "Completed"


@pytest.mark.parametrize("raw, seconds", [("00:10:00", 600), ("01:00:00", 3600), ("00:00:02.5", 2.5),
                                          ("1.00:00:00", 86400), ("-1", None)])
def test_function_timeout_values_read_as_the_host_reads_them(raw, seconds):
    assert parse_function_timeout(raw) == seconds


@pytest.mark.parametrize("raw", ["10 minutes", "00:00:00", "00:10"])
def test_a_malformed_function_timeout_refuses_to_start(raw):
    with pytest.raises(ConfigError, match="functionTimeout"):
        parse_function_timeout(raw)
