"""Throttling storms, connection resets, token expiry and concurrency limits against graphsim."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from mailextract.errors import GraphUnavailable
from tests.integration.graph.simhelpers import Recorder

ALICE = "alice@contoso.com"


def _drain(client, upn, cursor) -> list[str]:
    ids = []
    while cursor is not None:
        page = client.list_messages_page(upn, cursor)
        ids += [m["id"] for m in page.items]
        cursor = page.next_cursor
    return ids


def test_storm_of_429_503_504_and_resets_completes_within_4_in_flight(sim_env):
    env = sim_env(mailboxes={ALICE: 200}, seed=11)
    sim = env.sim
    truth = {m["id"] for m in sim.mailbox(ALICE).messages(fields=["id"])}
    # No server-side concurrency cap: the simulator's in-flight peak is then our client's own.
    sim.set_faults(latency_ms=15, concurrency_limit=None, rate_limit=(12, 1.0), error_rate=0.15, reset_rate=0.05)
    clients = [env.client() for _ in range(3)] + [env.client(cached=True)]
    recorders = [Recorder(c) for c in clients]
    start_barrier = threading.Barrier(12)

    def worker(i: int) -> list[str]:
        client = clients[i % len(clients)]
        start_barrier.wait()
        return _drain(client, ALICE, client.messages_cursor(select=["id"], top=50))

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(worker, range(12)))

    for ids in results:
        assert len(ids) == len(set(ids)) == 200 and set(ids) == truth
    stats = sim.stats()
    assert stats["max_in_flight_by_mailbox"][ALICE] == 4  # shared per-mailbox limit across clients
    assert stats["throttled_429"] >= 3 and stats["injected_errors"] > 0 and stats["injected_resets"] > 0
    answers = [a for r in recorders for a in r.answers()]
    assert sum(1 for a in answers if a[1] == 429) == stats["throttled_429"]
    # Every 429 carried Retry-After and was waited out exactly; 503/504/resets backed off.
    assert sum(r.check_waits_honoured() for r in recorders) == stats["throttled_429"]


def test_mailbox_concurrency_lowers_the_limit_and_the_run_completes(sim_env):
    env = sim_env(mailboxes={ALICE: 120}, seed=5)
    sim = env.sim
    sim.set_faults(latency_ms=30, concurrency_limit=2)  # Exchange allows fewer than our 4 here
    client = env.client(GRAPH_MAX_INFLIGHT_PER_MAILBOX="4")
    limiter = client.transport.limiters.for_mailbox(ALICE)
    assert limiter.limit == 4
    recorder = Recorder(client)

    def worker(_):
        return _drain(client, ALICE, client.messages_cursor(select=["id"], top=20))

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(worker, range(6)))
    truth = {m["id"] for m in sim.mailbox(ALICE).messages(fields=["id"])}
    assert all(len(ids) == 120 and set(ids) == truth for ids in results)
    rejected = sim.stats()["throttled_by_reason"].get("MailboxConcurrency", 0)
    assert rejected >= 1 and limiter.lowest_limit <= 2
    # Adapting keeps rejections rare: 6 threads x 6 pages would otherwise collide all run long.
    assert rejected <= 8
    assert recorder.check_waits_honoured() == rejected  # each waited its Retry-After (1 s)


def test_short_lived_tokens_are_renewed_once_per_lifetime(sim_env):
    env = sim_env(mailboxes={ALICE: 120}, seed=2)
    sim = env.sim
    sim.set_faults(token_lifetime_s=3)
    client = env.client()
    recorder = Recorder(client)
    before = sim.stats()["token_requests"]
    page = client.list_messages_page(ALICE, client.messages_cursor(select=["id"], top=20))
    ids = [m["id"] for m in page.items]
    page = client.list_messages_page(ALICE, page.next_cursor)
    ids += [m["id"] for m in page.items]
    assert sim.stats()["token_requests"] - before == 1  # reused, not one per call
    time.sleep(3.0)  # the token expires mid-run
    ids += _drain(client, ALICE, page.next_cursor)
    assert len(ids) == len(set(ids)) == 120
    assert sim.stats()["token_requests"] - before == 2  # exactly one renewal
    assert all(a[1] == 200 for a in recorder.answers())


def test_a_token_rejected_by_graph_is_refreshed_once_and_the_call_retried(sim_env):
    env = sim_env(mailboxes={ALICE: 60}, seed=4)
    sim = env.sim
    sim.set_faults(token_lifetime_s=1)
    expired = sim.access_token()  # a token this client still holds after it expired (e.g. clock skew)
    time.sleep(1.2)
    sim.set_faults(token_lifetime_s=3600)
    client = env.client()
    real = client.transport.tokens

    class HoldsAnExpiredToken:
        handed_out = False

        def get_token(self):
            if not self.handed_out:
                self.handed_out = True
                return expired
            return real.get_token()

        def refresh(self, rejected):
            assert rejected == expired
            return real.refresh(rejected)

    client.transport.tokens = HoldsAnExpiredToken()
    recorder = Recorder(client)
    before = sim.stats()["token_requests"]
    ids = _drain(client, ALICE, client.messages_cursor(select=["id"], top=25))
    assert len(ids) == len(set(ids)) == 60
    statuses = [a[1] for a in recorder.answers()]
    assert statuses == [401, 200, 200, 200]
    assert sim.stats()["token_requests"] - before == 1


def test_persistent_errors_end_with_graph_unavailable_naming_mailbox_and_call(sim_env):
    env = sim_env(mailboxes={ALICE: 10}, seed=3)
    env.sim.set_faults(error_rate=1.0)
    client = env.client(GRAPH_MAX_TOTAL_WAIT_SECONDS="3")
    client.transport.rand = lambda: 0.5  # jitter pinned: waits 0.25, 0.5, 1.0, then 2.0 > 1.25 left
    recorder = Recorder(client)
    with pytest.raises(GraphUnavailable) as info:
        client.list_folders(ALICE)
    e = info.value
    assert e.code == "graph_unavailable" and e.mailbox == ALICE
    assert e.call == f"GET /v1.0/users/{ALICE}/mailFolders/delta"
    assert e.attempts == 4 and e.waited_seconds == pytest.approx(1.75, abs=0.05) and e.status in (503, 504)
    assert "exceeds the remaining wait budget" in e.reason
    assert [a[1] in (503, 504) for a in recorder.answers()] == [True] * 4
    assert env.sim.stats()["requests"] == 4
