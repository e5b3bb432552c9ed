"""Extraction throughput against what Graph allows, measured side by side in one run.

    python -m bench.extract_bench single --messages 100000 --latency-ms 300 --per-item-ms 2
    python -m bench.extract_bench single --messages 100000 --latency-ms 150 --per-item-ms 13 --per-bodyless-item-ms 1.3
    python -m bench.extract_bench batch --mailboxes 200 --latency-ms 300 --per-item-ms 2
    python -m bench.extract_bench single --messages 20000 --latency-ms 0        # storage side only

Why: the service's speed only means something next to Graph's own limit and to the tools users
would otherwise use. One run starts the real stack (Azurite, graphsim over HTTPS with latency and
Outlook's limits on: 4 requests in flight and 10,000 requests per 10 minutes per app and mailbox,
devhost running function_app.py as a subprocess) and measures, against the same simulator:
  1. the theoretical limit: 4 x page size / page latency per mailbox (a batch: the configured
     number of pages in flight over the pages the mailboxes really have);
  2. plain sequential paging with `requests` (GET .../messages, following @odata.nextLink);
  3. Microsoft's msgraph-sdk page iterator (bench/sdk_paging.py);
  4. this service end to end: POST start -> status completed, bodies and index rows stored.
It prints messages/s for each and its ratio to (1), devhost's peak RSS, Graph requests, 429s and
the client's retries after a 429, and checks that exactly every message was stored once. It asserts
nothing about time; it exits non-zero only when a run fails or the stored messages are wrong.
graphsim runs inside this process (a thread), so phases 2 and 3 share its CPU with the simulator.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shlex
import shutil
import signal
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from bench.sdk_paging import page_with_msgraph_sdk
from bench.stack import FINISHED, CpuMeter, RssSampler, Service, read_log, start_devhost
from devhost.azurite import REPO_ROOT, start_azurite
from graphsim.testing import GraphSim
from mailextract.extraction.pages import MESSAGE_SELECT
from mailextract.graph.limiter import GRAPH_MAILBOX_RATE

PER_MAILBOX_IN_FLIGHT = 4


def page_seconds(items: int, args: argparse.Namespace) -> float:
    return (args.latency_ms + args.per_item_ms * items) / 1000


def mailbox_page_seconds(sim: GraphSim, upn: str, args: argparse.Namespace) -> tuple[int, float]:
    """(pages, seconds of Graph latency) to read every folder of a mailbox, one page at a time."""
    pages, seconds = 0, 0.0
    mailbox = sim.mailbox(upn)
    for folder in mailbox.folders():
        count = mailbox.count(folder["id"])
        for start in range(0, count, args.page_size):
            pages += 1
            seconds += page_seconds(min(args.page_size, count - start), args)
    return pages, seconds


def sequential_requests(sim: GraphSim, upn: str, page_size: int, limit: int) -> tuple[int, float]:
    """Page a mailbox with plain requests, one request at a time, up to `limit` messages; (messages, seconds)."""
    session = sim.session()
    session.headers["Prefer"] = 'IdType="ImmutableId"'
    url = f"{sim.graph_endpoint}/v1.0/users/{upn}/messages"
    params = {"$top": page_size, "$select": ",".join(MESSAGE_SELECT)}
    count, started = 0, time.monotonic()
    while url and count < limit:
        response = session.get(url, params=params, timeout=120)
        response.raise_for_status()
        body = response.json()
        count += len(body["value"])
        url, params = body.get("@odata.nextLink"), None  # the nextLink carries the whole query
    return count, time.monotonic() - started


def baselines(sim: GraphSim, upns: list[str], page_size: int, limit: int) -> dict[str, tuple[int, float, dict]]:
    """Phases 2 and 3, each reading the mailboxes one after the other, up to `limit` messages of each."""
    out = {}
    for name, page in (("requests", lambda upn: sequential_requests(sim, upn, page_size, limit)),
                       ("msgraph-sdk", lambda upn: page_with_msgraph_sdk(sim, upn, page_size, list(MESSAGE_SELECT),
                                                                         limit))):
        print(f"{name}: paging {len(upns)} mailbox(es) one page at a time...", flush=True)
        before = sim.stats()
        runs = [page(upn) for upn in upns]
        out[name] = (sum(c for c, _ in runs), sum(s for _, s in runs), graph_delta(before, sim.stats()))
    return out


def graph_delta(before: dict, after: dict) -> dict:
    return {"requests": after["requests"] - before["requests"],
            "429s": after["throttled_429"] - before["throttled_429"],
            "max_in_flight": max(after.get("max_in_flight_by_mailbox", {}).values(), default=0)}


def wait_single(service: Service, upn: str, rss: RssSampler, timeout: float,
                history_every: float = 3.0) -> dict:
    """One extraction through the API: POST -> completed, watching the orchestration's history size."""
    connection_id = f"bench-{uuid.uuid4().hex[:8]}"
    instance_id, history_max, next_history = None, 0, 0.0
    with rss:
        started = time.monotonic()
        service.start(connection_id, upn)
        while (status := service.status(connection_id))["status"] not in FINISHED:
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"run not finished after {timeout}s: {status}")
            if time.monotonic() >= next_history:  # a few looks only: each one reads the whole history
                instance_id = instance_id or service.instance_id()
                if instance_id:
                    history_max = max(history_max, len(service.instance(instance_id).get("historyEvents", [])))
                next_history = time.monotonic() + history_every
            time.sleep(0.25)
        elapsed = time.monotonic() - started
    if status["status"] != "completed":
        raise RuntimeError(f"run ended {status['status']}: {status.get('error')}")
    stored = service.result_ids(connection_id)
    return {"seconds": elapsed, "stored": {upn: stored}, "failed": 0, "history_max": history_max}


# A batch's status reads every run of the batch: polled as a user watching it would, not so often
# that the benchmark's own reads weigh on the service it measures (at most 2 s added to its time).
BATCH_STATUS_EVERY = 2.0


def wait_batch(service: Service, upns: list[str], rss: RssSampler, timeout: float) -> dict:
    """One batch through the API: POST -> completed; then every user's stored messages."""
    with rss:
        started = time.monotonic()
        batch_id = service.start_batch(upns)
        while (status := service.batch_status(batch_id))["status"] not in FINISHED:
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"batch not finished after {timeout}s: {status['totals']}")
            time.sleep(BATCH_STATUS_EVERY)
        elapsed = time.monotonic() - started
    stored = {user["user_upn"]: service.result_ids(user["connection_id"]) for user in status["users"]}
    return {"seconds": elapsed, "stored": stored, "failed": status["totals"]["failed"],
            "status": status["status"]}


def mixed_sizes(count: int, low: int, high: int, seed: int) -> list[int]:
    """Mailbox sizes spread log-uniformly between low and high: many small mailboxes, a few large."""
    r = random.Random(seed)
    return [int(math.exp(r.uniform(math.log(low), math.log(high)))) for _ in range(count)]


def retries_after_429(log_path: Path) -> int:
    text = log_path.read_text(encoding="utf-8", errors="replace")
    return len(re.findall(r"retry in [0-9.]+s after: HTTP 429", text))


def run(args: argparse.Namespace) -> int:
    wall, load_before = time.monotonic(), os.getloadavg()[0]
    if args.mode == "single":
        mailboxes = {"bench@contoso.com": args.messages}
    else:
        sizes = mixed_sizes(args.mailboxes, args.min_size, args.max_size, args.seed)
        mailboxes = {f"user{i:04d}@contoso.com": size for i, size in enumerate(sizes)}
    upns, total = list(mailboxes), sum(mailboxes.values())
    logs = Path(tempfile.mkdtemp(prefix="extract-bench-"))  # kept: devhost's log is worth reading
    print(f"logs: {logs / 'devhost.log'} (devhost), {logs / 'azurite.log'} (Azurite)", flush=True)
    host_json = json.loads((REPO_ROOT / "host.json").read_text())["extensions"]["durableTask"]
    activities = args.activities or host_json["maxConcurrentActivityFunctions"]
    parallel = args.parallel
    with ExitStack() as stack:
        data = Path(tempfile.mkdtemp(prefix="extract-bench-azurite-"))
        stack.callback(shutil.rmtree, data, ignore_errors=True)
        azurite = start_azurite(data, logs / "azurite.log", in_memory=not args.azurite_on_disk)
        stack.callback(azurite.stop)
        print(f"generating {len(upns)} mailbox(es), {total:,} messages...", flush=True)
        sim = stack.enter_context(GraphSim.start(mailboxes=mailboxes, seed=args.seed))
        sim.set_faults(latency_ms=args.latency_ms, latency_per_item_ms=args.per_item_ms,
                       latency_per_bodyless_item_ms=args.per_bodyless_item_ms,
                       concurrency_limit=PER_MAILBOX_IN_FLIGHT, rate_limit=args.sim_rate_limit or GRAPH_MAILBOX_RATE)
        host = start_devhost(sim, azurite.connection_string, args.page_size, logs, workers=args.workers, extra_env={
            "AzureFunctionsJobHost__extensions__durableTask__maxConcurrentActivityFunctions": str(activities),
            "EXTRACTION_BATCH_PARALLELISM": str(parallel)})
        stack.callback(host.stop)
        print(f"devhost pid {host.process.pid} on {host.base_url}", flush=True)

        sample = upns if args.mode == "single" else upns[:args.sample]
        measured = {} if args.skip_baselines else baselines(sim, sample, args.page_size, args.baseline_messages)
        service = Service(host)
        rss = RssSampler(host.process.pid)
        idle_rss = rss.rss()
        before = sim.stats()
        cpu = CpuMeter({"app (devhost's workers)": (host.process.pid, "children"),
                        "devhost host": (host.process.pid, "own"), "Azurite": azurite.process.pid,
                        "graphsim + bench": os.getpid()})
        print(f"service: extracting {len(upns)} mailbox(es) through the API...", flush=True)
        result = (wait_single(service, upns[0], rss, args.timeout) if args.mode == "single"
                  else wait_batch(service, upns, rss, args.timeout))
        graph = graph_delta(before, sim.stats())
        cpu_seconds = cpu.used()
        time.sleep(2)  # the last episodes of the orchestrations that just ended
        left_running = service.still_running()
        pages, latency = zip(*(mailbox_page_seconds(sim, upn, args) for upn in upns))
        expected = {upn: {m["id"] for m in sim.mailbox(upn).messages(fields=["id"])} for upn in upns}

    problems, page_ms = read_log(host.log_path)  # after shutdown, so errors while stopping count too
    retries = retries_after_429(host.log_path)
    # (1) the theoretical limit
    if args.latency_ms == 0 and args.per_item_ms == 0:
        limit = math.inf
        limit_text = "no simulator latency: storage-side throughput"
    elif args.mode == "single":
        limit = PER_MAILBOX_IN_FLIGHT * args.page_size / page_seconds(args.page_size, args)
        limit_text = f"4 x {args.page_size} / {page_seconds(args.page_size, args) * 1000:.0f} ms"
    else:
        slots = min(activities * args.workers, parallel * PER_MAILBOX_IN_FLIGHT)
        limit = total / (sum(latency) / slots)
        limit_text = f"{sum(pages):,} pages, {slots} in flight"
    rows = [("1. theoretical limit", total, None if math.isinf(limit) else total / limit, limit, limit_text, None)]
    for name, (count, seconds, calls) in measured.items():
        label = "2. sequential requests" if name == "requests" else "3. msgraph-sdk page iterator"
        rows.append((label, count, seconds, count / seconds,
                     f"{len(sample)} mailbox(es), the first {args.baseline_messages:,} messages at most", calls))
    rows.append(("4. this service, end to end", total, result["seconds"], total / result["seconds"],
                 f"{len(upns)} mailbox(es)", graph))
    print(f"\ncommand: python -m bench.extract_bench {shlex.join(sys.argv[1:])}")
    bodyless = "" if args.per_bodyless_item_ms is None else f" ({args.per_bodyless_item_ms:g} without its body)"
    print(f"mailboxes {len(upns)}, messages {total:,}, page size {args.page_size}, latency {args.latency_ms:g} ms/page "
          f"+ {args.per_item_ms:g} ms/item{bodyless}, {args.workers} worker process(es) with {activities} activities "
          f"in flight each, batch parallelism {parallel}")
    print(f"{'phase':<32} {'messages':>9} {'seconds':>8} {'msg/s':>8} {'vs (1)':>7} {'requests':>9} {'429s':>5}  note")
    for label, count, seconds, rate, note, calls in rows:
        ratio = "" if math.isinf(limit) else f"{rate / limit:.2f}"
        print(f"{label:<32} {count:>9,} {'' if seconds is None else f'{seconds:.1f}':>8} {rate:>8,.0f} {ratio:>7} "
              f"{'' if calls is None else calls['requests']:>9} {'' if calls is None else calls['429s']:>5}  {note}")
    for label, count, seconds, rate, _, _ in rows[1:-1]:
        print(f"service / {label[3:]}: {rows[-1][3] / rate:.2f}x")
    stored = result["stored"]
    duplicates = sum(len(ids) - len(set(ids)) for ids in stored.values())
    wrong = sum(set(stored.get(upn, [])) != expected[upn] for upn in upns)
    details = [
        ("devhost RSS idle -> peak", f"{idle_rss / 2**20:.0f} MB -> {rss.peak / 2**20:.0f} MB (peak by quarter of "
                                     f"the run: {', '.join(f'{q / 2**20:.0f}' for q in rss.quarter_peaks())} MB)"),
        ("extract_lane activities", f"{len(page_ms)}, {sum(page_ms) / max(len(page_ms), 1):.0f} ms mean"),
        ("Graph max in flight per mailbox", graph["max_in_flight"]),
        ("429s / client retries after a 429", f"{graph['429s']} / {retries}" + (
            f" ({retries / graph['429s']:.2f} per 429)" if graph["429s"] else "")),
        ("failed runs", result["failed"]),
        ("orchestrations still Pending/Running 2 s after", left_running),
        ("stored: mailboxes wrong / duplicates", f"{wrong} / {duplicates}"),
        ("devhost log", ", ".join(f"{k} {v}" for k, v in problems.items())),
        ("total wall time", f"{time.monotonic() - wall:.1f} s"),
        ("machine", f"{os.cpu_count()} CPUs, 1-min load {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"),
    ]
    details.insert(1, ("CPU during the service run", ", ".join(
        f"{name} {seconds:.0f} s ({seconds / total * 1000:.2f} ms/msg)" for name, seconds in cpu_seconds.items())))
    if "history_max" in result:
        details.insert(2, ("history events, max observed", result["history_max"]))
    width = max(len(name) for name, _ in details)
    for name, value in details:
        print(f"  {name:<{width}}  {value}")
    print(f"devhost log kept at {logs / 'devhost.log'}")
    ok = not wrong and not duplicates and not result["failed"] and not left_running
    if not ok:
        print("MISMATCH: the stored messages differ from the mailboxes, a run failed, or an orchestration is "
              "still running", file=sys.stderr)
    return 0 if ok else 1


def _rate(text: str) -> tuple[int, float]:
    requests, _, seconds = text.partition("/")
    return int(requests), float(seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.extract_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("single", "batch"), help="one mailbox, or a batch of mailboxes")
    parser.add_argument("--messages", type=int, default=20000, help="single: mailbox size (default 20000)")
    parser.add_argument("--mailboxes", type=int, default=200, help="batch: how many mailboxes (default 200)")
    parser.add_argument("--min-size", type=int, default=20, help="batch: smallest mailbox (default 20)")
    parser.add_argument("--max-size", type=int, default=3000, help="batch: largest mailbox (default 3000)")
    parser.add_argument("--sample", type=int, default=10,
                        help="batch: mailboxes paged by phases 2 and 3 (default 10; all would take long)")
    parser.add_argument("--latency-ms", type=float, default=300, help="graphsim latency per request")
    parser.add_argument("--per-item-ms", type=float, default=2, help="graphsim latency per returned item")
    parser.add_argument("--per-bodyless-item-ms", type=float, default=None,
                        help="graphsim latency per item returned without its body (default: --per-item-ms)")
    parser.add_argument("--page-size", type=int, default=100, help="$top, for every phase and GRAPH_PAGE_SIZE")
    parser.add_argument("--workers", type=int, default=2,
                        help="devhost worker processes, as Function app instances (default 2)")
    parser.add_argument("--activities", type=int, default=None,
                        help="devhost's maxConcurrentActivityFunctions (default: host.json's)")
    parser.add_argument("--parallel", type=int, default=24, help="EXTRACTION_BATCH_PARALLELISM (default 24, the service's)")
    parser.add_argument("--skip-baselines", action="store_true", help="measure only (1) and (4)")
    parser.add_argument("--baseline-messages", type=int, default=20_000,
                        help="phases 2 and 3 read at most this many messages of a mailbox (default 20000): "
                             "their rate is steady, and the msgraph-sdk iterator needs ~10 ms of CPU per message")
    parser.add_argument("--sim-rate-limit", type=_rate, default=None, metavar="N/SECONDS",
                        help="a stricter request rate per mailbox in graphsim than Graph's 10000/600, "
                             "to watch 429 RequestRate answers being honoured")
    parser.add_argument("--azurite-on-disk", action="store_true",
                        help="let Azurite persist to disk (its CPU then grows with the data stored)")
    parser.add_argument("--seed", type=int, default=1, help="graphsim seed (mailbox contents)")
    parser.add_argument("--timeout", type=float, default=3600, help="give up on the run after this many seconds")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the stack on SIGTERM too, not only Ctrl-C
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
