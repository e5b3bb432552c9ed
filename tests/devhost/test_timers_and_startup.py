"""Timer triggers (NCRONTAB, run_on_startup, past_due, one run at a time) and start-up checks."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from azure.data.tables import TableClient

from devhost.azurite import REPO_ROOT
from tests.devhost.conftest import SAMPLE_APP
from tests.support.devhost_fixtures import wait_for


def _runs(connection: str, table: str) -> list[dict]:
    client = TableClient.from_connection_string(connection, table)
    try:
        return sorted(client.list_entities(), key=lambda e: e["Start"])
    except Exception:
        return []


def _wait_runs(connection: str, table: str, at_least: int, timeout: float) -> list[dict]:
    def enough():
        runs = _runs(connection, table)
        return runs if len(runs) >= at_least else None
    return wait_for(enough, timeout=timeout, message=f"{at_least} timer runs")


def test_timer_runs_on_startup_then_on_schedule_never_overlapping(devhost_factory, storage_connection_string):
    table = f"ticks{uuid.uuid4().hex[:8]}"
    # Every second, but each run takes 1.5 s: runs must not overlap.
    devhost_factory(SAMPLE_APP, env={"TICK_SCHEDULE": "* * * * * *", "TICK_SECONDS": "1.5", "TICK_TABLE": table})
    runs = _wait_runs(storage_connection_string, table, 3, timeout=20)
    assert runs[0]["PastDue"] is False  # the run_on_startup run
    for earlier, later in zip(runs, runs[1:]):
        assert later["Start"] >= earlier["End"]


def test_missed_occurrence_while_down_runs_at_start_as_past_due(devhost_factory, storage_connection_string):
    table = f"ticks{uuid.uuid4().hex[:8]}"
    hub = f"T{uuid.uuid4().hex[:12]}"
    env = {"TICK_SCHEDULE": "*/2 * * * * *", "TICK_SECONDS": "0", "TICK_TABLE": table}
    host = devhost_factory(SAMPLE_APP, env=env, hub=hub)
    _wait_runs(storage_connection_string, table, 2, timeout=15)
    host.stop()
    time.sleep(4.5)  # at least two occurrences are missed
    before = len(_runs(storage_connection_string, table))
    host.start()
    runs = _wait_runs(storage_connection_string, table, before + 1, timeout=10)
    assert runs[before]["PastDue"] is True


def _run_devhost(app: Path, env_extra: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **env_extra}
    return subprocess.run([sys.executable, "-m", "devhost", "--app", str(app), "--port", "0"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_unsupported_binding_refuses_to_start_naming_function_and_binding(storage_connection_string):
    result = _run_devhost(Path(__file__).parent / "unsupported_app",
                          {"AzureWebJobsStorage": storage_connection_string})
    assert result.returncode == 2
    assert "function 'on_work' uses binding 'msg' of type 'queueTrigger'" in result.stderr


def test_missing_storage_setting_refuses_to_start(tmp_path):
    env = {k: "" for k in ("AzureWebJobsStorage",)}
    result = _run_devhost(SAMPLE_APP, env)
    assert result.returncode == 2
    assert "AzureWebJobsStorage is missing" in result.stderr


def test_settings_file_values_become_environment_but_process_env_wins(devhost_factory, tmp_path,
                                                                       storage_connection_string):
    settings = tmp_path / "settings.json"
    table = f"ticks{uuid.uuid4().hex[:8]}"
    settings.write_text('{"Values": {"TICK_SCHEDULE": "0 0 0 1 1 *", "TICK_SECONDS": "0", '
                        f'"TICK_TABLE": "{table}", "AzureWebJobsStorage": "UseDevelopmentStorage=true"}}}}')
    # AzureWebJobsStorage from the process environment (the test's Azurite) beats the file's.
    host = devhost_factory(SAMPLE_APP, args=["--settings", str(settings)])
    assert "Function timer: tick" in host.log_text()
    runs = _wait_runs(storage_connection_string, table, 1, timeout=10)
    assert len(runs) == 1 and runs[0]["PastDue"] is False
