"""devhost as a real subprocess on a free port, one task hub per test, logs kept on failure.

`devhost_factory(app_dir, env=..., args=..., workers=2)` starts one; `.kill()` is `kill -9` (the
crash tests), `.restart()` starts it again on the same port, hub and storage. When a test fails,
the logs of every devhost it started are copied to test-artifacts/<test name>/.

Every devhost runs the app in DEFAULT_WORKERS worker processes (`--workers`), as a scaled-out app
runs on several instances, so no test passes only because two invocations shared a process.
`workers=` (or `--workers` in `args`) overrides it.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from devhost.azurite import REPO_ROOT, free_port

ARTIFACTS = REPO_ROOT / "test-artifacts"
DEFAULT_WORKERS = 2


class DevhostProcess:
    def __init__(self, app_dir: Path, env: dict[str, str], args: list[str], log_path: Path):
        self.app_dir = app_dir
        self.env = env
        self.args = args
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.keys: dict[str, str] = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def start(self, timeout: float = 30) -> "DevhostProcess":
        log = open(self.log_path, "ab")
        log.write(f"\n===== devhost start {time.strftime('%H:%M:%S')} =====\n".encode())
        log.flush()
        offset = self.log_path.stat().st_size
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devhost", "--app", str(self.app_dir), "--port", str(self.port),
             *self.args],
            cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_bytes()[offset:].decode("utf-8", "replace")
            for line in text.splitlines():
                if line.startswith("devhost keys:"):
                    self.keys = dict(part.split("=", 1) for part in line.split()[2:])
            if "devhost listening on" in text:
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"devhost exited with {self.process.returncode}:\n{text[-3000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"devhost did not start in {timeout}s; log: {self.log_path}")

    def kill(self) -> None:
        """kill -9: no cleanup, no flush, exactly like a crashed host."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> "DevhostProcess":
        self.kill()
        return self.start()

    def worker_pids(self) -> set[int]:
        """Pids of the worker processes running the app now (devhost's child processes)."""
        if not self.process or self.process.poll() is not None:
            return set()
        try:
            text = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        except OSError:
            return set()
        return {int(pid) for pid in text.split()}

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or (report.when == "setup" and report.failed):
        item.stash.setdefault(_FAILED, []).append(report.failed)


_FAILED = pytest.StashKey[list]()


@pytest.fixture
def devhost_factory(storage_connection_string, tmp_path, request):
    started: list[DevhostProcess] = []

    def start(app_dir: Path, *, env: dict[str, str] | None = None, args: list[str] = (),
              hub: str | None = None, workers: int | None = None) -> DevhostProcess:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("DEVHOST_")}
        full_env.update({
            "AzureWebJobsStorage": storage_connection_string,
            "AzureFunctionsJobHost__extensions__durableTask__hubName": hub or f"T{uuid.uuid4().hex[:12]}",
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONUNBUFFERED": "1",
        })
        full_env.update(env or {})
        args = list(args)
        if "--workers" not in args:
            args += ["--workers", str(workers or DEFAULT_WORKERS)]
        proc = DevhostProcess(Path(app_dir), full_env, args, tmp_path / f"devhost-{len(started)}.log")
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()
    if any(request.node.stash.get(_FAILED, [])):
        target = ARTIFACTS / request.node.nodeid.replace("/", "_").replace("::", "__")
        target.mkdir(parents=True, exist_ok=True)
        for proc in started:
            shutil.copy(proc.log_path, target / proc.log_path.name)


def wait_for(predicate, timeout: float = 30, interval: float = 0.2, message: str = "condition"):
    """Poll until predicate() returns a truthy value; return it, or fail naming what we waited for."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}; last value: {last!r}")
