"""End-to-end extraction throughput, against the raw rate of paging the same mailbox.

    python -m bench.extract_bench --messages 20000 --latency-ms 150 [--page-size 100] [--per-item-ms N]

Why: the service's cost only means something next to what Graph itself allows. This starts the
real stack (Azurite, graphsim over HTTPS with latency on, devhost running function_app.py as a
subprocess), then
  1. baseline: pages the whole mailbox sequentially with plain `requests` (same $select and Prefer
     as the service) and times it;
  2. service: starts one extraction through the HTTP API, polls its status until completed, and
     times POST -> completed, sampling devhost's RSS (process + children) and the orchestration's
     history size meanwhile; then pages the result route to check every message is there.
It prints both rates, their ratio, devhost's peak RSS, history events per execution (the last
execution's, and the most seen while polling), Graph requests and 429s, the time spent inside the
extract_page activities and what devhost's log says went wrong (the log is kept; its path is
printed), and the wall time. Everything is stopped on exit, Ctrl-C and SIGTERM included. It asserts
nothing about time; it exits non-zero only when the run fails or the result count is wrong.
graphsim runs inside this process (a thread), so the baseline and the service share its CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import psutil
import requests
from cryptography.fernet import Fernet

from devhost.azurite import REPO_ROOT, start_azurite
from graphsim.testing import GraphSim
from tests.support.devhost_fixtures import DevhostProcess

UPN = "bench@contoso.com"
SELECT = ("id,subject,from,toRecipients,ccRecipients,receivedDateTime,sentDateTime,hasAttachments,isRead,"
          "importance,conversationId,internetMessageId,bodyPreview,body,parentFolderId,categories")
MANAGEMENT = "runtime/webhooks/durabletask/instances"
FINISHED = ("completed", "cancelled", "failed")


class RssSampler:
    """Samples a process tree's resident memory every `interval` seconds on a thread; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
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
            self.peak = max(self.peak, self.rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def baseline(sim: GraphSim, page_size: int) -> tuple[int, float]:
    """Page the whole mailbox with plain requests, one request at a time; (messages, seconds)."""
    session = sim.session()
    session.headers["Prefer"] = 'IdType="ImmutableId"'
    url = f"{sim.graph_endpoint}/v1.0/users/{UPN}/messages"
    params = {"$top": page_size, "$select": SELECT}
    count, started = 0, time.monotonic()
    while url:
        response = session.get(url, params=params, timeout=120)
        response.raise_for_status()
        body = response.json()
        count += len(body["value"])
        url, params = body.get("@odata.nextLink"), None  # the nextLink carries the whole query
    return count, time.monotonic() - started


def start_devhost(sim: GraphSim, connection_string: str, page_size: int, workdir: Path) -> DevhostProcess:
    """devhost on the real app, configured like the e2e tests do (tests/e2e/conftest.py)."""
    settings = workdir / "settings.json"
    settings.write_text(json.dumps({"Values": {}}))  # never a developer's local.settings.json
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVHOST_")}
    env.update({
        "AzureWebJobsStorage": connection_string,
        "AzureFunctionsJobHost__extensions__durableTask__hubName": f"bench{uuid.uuid4().hex[:10]}",
        "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1",
        "AZURE_AUTHORITY_HOST": sim.authority_host, "GRAPH_API_ENDPOINT": sim.graph_endpoint,
        "REQUESTS_CA_BUNDLE": sim.ca_bundle, "TENANT_ID": sim.tenant_id,
        "OUTLOOK_CLIENT_ID": sim.client_id, "OUTLOOK_CLIENT_SECRET": sim.client_secret,
        "CREDENTIAL_ENCRYPTION_KEY": Fernet.generate_key().decode(), "GRAPH_PAGE_SIZE": str(page_size),
        "SYNC_TIMER_SCHEDULE": "0 0 0 1 1 *",  # no scheduled syncs during a benchmark
    })
    host = DevhostProcess(REPO_ROOT, env, ["--settings", str(settings)], workdir / "devhost.log")
    return host.start(timeout=60)


class Service:
    """The extraction API and the Durable management API of one devhost, over plain HTTP."""

    def __init__(self, host: DevhostProcess):
        self.host = host
        self.http = requests.Session()
        self.http.trust_env = False  # loopback: no proxies from the environment

    def get(self, path: str, **params) -> requests.Response:
        return self.http.get(self.host.url(path), params=params, timeout=60)

    def start(self, connection_id: str) -> None:
        response = self.http.post(self.host.url(f"api/emails/extract/start/{connection_id}"),
                                  json={"user_upn": UPN}, timeout=60)
        if response.status_code != 202:
            raise RuntimeError(f"start answered {response.status_code}: {response.text}")

    def status(self, connection_id: str) -> dict:
        response = self.get(f"api/emails/extract/status/{connection_id}")
        response.raise_for_status()
        return response.json()

    def instance_id(self) -> str | None:
        found = self.get(f"{MANAGEMENT}/", instanceIdPrefix="extract-").json()
        return found[0]["instanceId"] if found else None

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


def extract(service: Service, rss: RssSampler, timeout: float, history_every: float = 3.0) -> dict:
    """Start one run and wait for it; time POST -> completed, watch the history size meanwhile."""
    connection_id = f"bench-{uuid.uuid4().hex[:8]}"
    instance_id, history_max, next_history = None, 0, 0.0
    with rss:
        started = time.monotonic()
        service.start(connection_id)
        while True:
            status = service.status(connection_id)
            if status["status"] in FINISHED:
                elapsed = time.monotonic() - started
                break
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"run not finished after {timeout}s: {status}")
            if time.monotonic() >= next_history:  # a few looks only: each one reads the whole history
                instance_id = instance_id or service.instance_id()
                if instance_id:
                    history_max = max(history_max, len(service.instance(instance_id).get("historyEvents", [])))
                next_history = time.monotonic() + history_every
            time.sleep(0.25)
    if status["status"] != "completed":
        raise RuntimeError(f"run ended {status['status']}: {status.get('error')}")
    instance_id = instance_id or service.instance_id()
    deadline = time.monotonic() + 60  # the job row says completed a moment before the orchestration does
    while (final := service.instance(instance_id))["runtimeStatus"] != "Completed" and time.monotonic() < deadline:
        time.sleep(0.2)
    history_last = len(final.get("historyEvents", []))
    return {"connection_id": connection_id, "seconds": elapsed, "status": status, "instance": final,
            "history_last": history_last, "history_max": max(history_max, history_last)}


def read_log(log_path: Path) -> tuple[dict[str, int], list[int]]:
    """What devhost's log says went wrong, and the durations (ms) of the extract_page activities."""
    lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    problems = {"tracebacks": sum("Traceback (most recent call last)" in line for line in lines),
                "failed invocations": sum("(Failed," in line for line in lines),
                "ERROR lines": sum(" ERROR " in line for line in lines),
                "WARNING lines": sum(" WARNING " in line for line in lines)}
    pages = [int(m.group(1)) for line in lines
             if (m := re.search(r"Executed 'Functions\.extract_page' \(Succeeded.*Duration=(\d+)ms", line))]
    return problems, pages


def run(args: argparse.Namespace) -> int:
    wall, load_before = time.monotonic(), os.getloadavg()[0]
    logs = Path(tempfile.mkdtemp(prefix="extract-bench-"))  # kept: devhost's log is worth reading
    print(f"logs: {logs / 'devhost.log'} (devhost), {logs / 'azurite.log'} (Azurite)", flush=True)
    with ExitStack() as stack:
        data = Path(tempfile.mkdtemp(prefix="extract-bench-azurite-"))
        stack.callback(shutil.rmtree, data, ignore_errors=True)
        azurite = start_azurite(data, logs / "azurite.log")
        stack.callback(azurite.stop)
        sim = stack.enter_context(GraphSim.start(mailboxes={UPN: args.messages}, seed=args.seed))
        sim.set_faults(latency_ms=args.latency_ms, latency_per_item_ms=args.per_item_ms, concurrency_limit=4)
        host = start_devhost(sim, azurite.connection_string, args.page_size, logs)
        stack.callback(host.stop)
        print(f"devhost pid {host.process.pid} on {host.base_url}", flush=True)

        print("baseline: paging the mailbox with plain requests...", flush=True)
        base_count, base_seconds = baseline(sim, args.page_size)
        sim.reset_stats()

        service = Service(host)
        rss = RssSampler(host.process.pid)
        idle_rss = rss.rss()
        print("service: extracting through the API...", flush=True)
        result = extract(service, rss, timeout=args.timeout)
        graph = sim.stats()
        stored = service.result_ids(result["connection_id"])

    problems, pages = read_log(host.log_path)  # after shutdown, so errors while stopping count too
    base_rate = base_count / base_seconds
    service_rate = args.messages / result["seconds"]
    rows = [
        ("messages", f"{args.messages:,}"),
        ("page size", args.page_size),
        ("latency", f"{args.latency_ms:g} ms/page + {args.per_item_ms:g} ms/item"),
        ("baseline (plain requests)", f"{base_rate:,.0f} msg/s ({base_count:,} in {base_seconds:.1f} s)"),
        ("service (POST -> completed)", f"{service_rate:,.0f} msg/s ({args.messages:,} in {result['seconds']:.1f} s)"),
        ("ratio service/baseline", f"{service_rate / base_rate:.2f}"),
        ("extract_page activities", f"{len(pages)} pages, {sum(pages) / 1000:.1f} s in total, "
                                    f"{sum(pages) / max(len(pages), 1):.0f} ms mean"),
        ("devhost RSS idle -> peak", f"{idle_rss / 2**20:.0f} MB -> {rss.peak / 2**20:.0f} MB"),
        ("history events, last execution", result["history_last"]),
        ("history events, max observed", result["history_max"]),
        ("Graph requests / 429s (service)", f"{graph['requests']:,} / {graph['throttled_429']}"),
        ("Graph max in flight (service)", graph.get("max_in_flight_by_mailbox", {}).get(UPN, "?")),
        ("stored (result route, unique)", f"{len(stored):,} ({len(set(stored)):,})"),
        ("devhost log", ", ".join(f"{k} {v}" for k, v in problems.items())),
        ("total wall time", f"{time.monotonic() - wall:.1f} s"),
        ("machine", f"{os.cpu_count()} CPUs, 1-min load {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"),
    ]
    print(f"\ncommand: python -m bench.extract_bench {shlex.join(sys.argv[1:])}")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print(f"devhost log kept at {logs / 'devhost.log'}")
    ok = len(stored) == len(set(stored)) == args.messages == base_count
    if not ok:
        print(f"MISMATCH: expected {args.messages:,} messages", file=sys.stderr)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.extract_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20000, help="mailbox size (default 20000)")
    parser.add_argument("--latency-ms", type=float, default=150, help="graphsim latency per request")
    parser.add_argument("--per-item-ms", type=float, default=0, help="graphsim latency per returned item")
    parser.add_argument("--page-size", type=int, default=100, help="$top, for both the baseline and GRAPH_PAGE_SIZE")
    parser.add_argument("--seed", type=int, default=1, help="graphsim seed (mailbox contents)")
    parser.add_argument("--timeout", type=float, default=3600, help="give up on the run after this many seconds")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the stack on SIGTERM too, not only Ctrl-C
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
