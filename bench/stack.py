"""The benchmark's stack: devhost running the real app as a subprocess, a client of its API, and
samplers of what it costs (resident memory, devhost's log). The benchmarks in this package share it.
"""
from __future__ import annotations

import json
import os
import re
import threading
import uuid
from pathlib import Path

import psutil
import requests
from cryptography.fernet import Fernet

from devhost.azurite import REPO_ROOT
from devhost.config import with_process_defaults
from graphsim.testing import GraphSim
from tests.support.devhost_fixtures import DevhostProcess

MANAGEMENT = "runtime/webhooks/durabletask/instances"
FINISHED = ("completed", "cancelled", "failed")


class RssSampler:
    """Samples a process tree's resident memory every `interval` seconds on a thread; keeps the
    peak, and the peak of each quarter of the sampled time (does memory grow as a run goes on?)."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        total = 0
        try:
            tree = [self.process, *self.process.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        for proc in tree:
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.rss())
            self.peak = max(self.peak, self.samples[-1])
            self._stop.wait(self.interval)

    def quarter_peaks(self) -> list[int]:
        n = len(self.samples)
        return [max(self.samples[n * q // 4:max(n * (q + 1) // 4, n * q // 4 + 1)] or [0]) for q in range(4)]

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


class CpuMeter:
    """CPU seconds (user + system) each named process uses from construction to used(). A name maps
    to a pid (that process and its children, except for the benchmark's own process, whose children
    are the others), or to (pid, "own") / (pid, "children"): that process alone, or its children
    alone (devhost's host process apart from the worker processes that run the app)."""

    def __init__(self, pids: dict[str, int | tuple[int, str]]):
        self.targets = {name: (target if isinstance(target, tuple) else (target, "tree")) for name, target in pids.items()}
        self.start = {name: self._cpu(*target) for name, target in self.targets.items()}

    @staticmethod
    def _cpu(pid: int, part: str) -> float:
        process = psutil.Process(pid)
        own = [] if part == "children" else [process]
        children = [] if part == "own" or pid == os.getpid() else process.children(recursive=True)
        total = 0.0
        for proc in own + children:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total

    def used(self) -> dict[str, float]:
        return {name: self._cpu(*target) - self.start[name] for name, target in self.targets.items()}


def start_devhost(sim: GraphSim, connection_string: str, page_size: int, workdir: Path,
                  extra_env: dict[str, str] | None = None, workers: int = 2) -> DevhostProcess:
    """devhost on the real app in `workers` worker processes (instances), configured like the e2e
    tests do (tests/e2e/conftest.py)."""
    settings = workdir / "settings.json"
    settings.write_text(json.dumps({"Values": {}}))  # never a developer's local.settings.json
    env = with_process_defaults({k: v for k, v in os.environ.items() if not k.startswith("DEVHOST_")})
    env.update({
        "AzureWebJobsStorage": connection_string,
        "AzureFunctionsJobHost__extensions__durableTask__hubName": f"bench{uuid.uuid4().hex[:10]}",
        "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1",
        "AZURE_AUTHORITY_HOST": sim.authority_host, "GRAPH_API_ENDPOINT": sim.graph_endpoint,
        "REQUESTS_CA_BUNDLE": sim.ca_bundle, "TENANT_ID": sim.tenant_id,
        "OUTLOOK_CLIENT_ID": sim.client_id, "OUTLOOK_CLIENT_SECRET": sim.client_secret,
        "CREDENTIAL_ENCRYPTION_KEY": Fernet.generate_key().decode(), "GRAPH_PAGE_SIZE": str(page_size),
        "SYNC_TIMER_SCHEDULE": "0 0 0 1 1 *",  # no scheduled syncs during a benchmark
        "PYTHON_THREADPOOL_THREAD_COUNT": "42",  # as local.settings.json.example (README, settings)
        **(extra_env or {}),
    })
    host = DevhostProcess(REPO_ROOT, env, ["--settings", str(settings), "--workers", str(workers)],
                          workdir / "devhost.log")
    return host.start(timeout=60)


class Service:
    """The extraction API and the Durable management API of one devhost, over plain HTTP."""

    def __init__(self, host: DevhostProcess):
        self.host = host
        self.http = requests.Session()
        self.http.trust_env = False  # loopback: no proxies from the environment

    def get(self, path: str, **params) -> requests.Response:
        return self.http.get(self.host.url(path), params=params, timeout=60)

    def start(self, connection_id: str, upn: str) -> None:
        response = self.http.post(self.host.url(f"api/emails/extract/start/{connection_id}"),
                                  json={"user_upn": upn}, timeout=60)
        if response.status_code != 202:
            raise RuntimeError(f"start answered {response.status_code}: {response.text}")

    def start_batch(self, upns: list[str]) -> str:
        response = self.http.post(self.host.url("api/emails/extract/batch/start"), json={"user_upns": upns},
                                  timeout=60)
        if response.status_code != 202:
            raise RuntimeError(f"batch start answered {response.status_code}: {response.text}")
        return response.json()["batch_id"]

    def batch_status(self, batch_id: str) -> dict:
        response = self.get(f"api/emails/extract/batch/status/{batch_id}")
        response.raise_for_status()
        return response.json()

    def status(self, connection_id: str) -> dict:
        response = self.get(f"api/emails/extract/status/{connection_id}")
        response.raise_for_status()
        return response.json()

    def instance_id(self, prefix: str = "extract-") -> str | None:
        found = self.get(f"{MANAGEMENT}/", instanceIdPrefix=prefix).json()
        return found[0]["instanceId"] if found else None

    def still_running(self) -> int:
        """Orchestrations the runtime still holds as Pending or Running (none once a run has ended)."""
        return len(self.get(f"{MANAGEMENT}/", runtimeStatus="Pending,Running").json())

    def instance(self, instance_id: str) -> dict:
        response = self.get(f"{MANAGEMENT}/{instance_id}", showHistory="true", showInput="false")
        response.raise_for_status()
        return response.json()

    def result_ids(self, connection_id: str) -> list[str]:
        ids, cursor = [], None
        while True:
            params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
            response = self.get(f"api/emails/extract/result/{connection_id}", **params)
            response.raise_for_status()
            body = response.json()
            ids += [email["id"] for email in body["emails"]]
            cursor = body["next_cursor"]
            if cursor is None:
                return ids


def read_log(log_path: Path) -> tuple[dict[str, int], list[int]]:
    """What devhost's log says went wrong, and the durations (ms) of the extract_lane activities."""
    lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    problems = {"tracebacks": sum("Traceback (most recent call last)" in line for line in lines),
                "failed invocations": sum("(Failed," in line for line in lines),
                "ERROR lines": sum(" ERROR " in line for line in lines),
                "WARNING lines": sum(" WARNING " in line for line in lines)}
    pages = [int(m.group(1)) for line in lines
             if (m := re.search(r"Executed 'Functions\.extract_lane' \(Succeeded.*Duration=(\d+)ms", line))]
    return problems, pages


