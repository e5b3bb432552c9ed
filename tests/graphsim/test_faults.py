"""Load and fault shaping: MailboxConcurrency and RequestRate throttling, injected 503/504/resets, latency, stats."""
from __future__ import annotations

import threading
import time

import pytest
import requests

from graphsim.faults import FaultConfig, FaultShaper, Stats
from graphsim.graph import _content_items

from .helpers import graph_error, users_url

ALICE, BOB = "alice@contoso.com", "bob@contoso.com"


def _simultaneously(sim, upns: list[str], latency_ms: int) -> list[requests.Response]:
    """One request per upn, all released at once on already-open connections."""
    token = sim.access_token()
    sessions = [sim.session(token) for _ in upns]
    for s, upn in zip(sessions, upns):  # open the TLS connections before timing matters
        assert s.get(f"{users_url(sim, upn)}/mailFolders/inbox").status_code == 200
    sim.set_faults(latency_ms=latency_ms)
    barrier = threading.Barrier(len(upns))
    results: list[requests.Response | None] = [None] * len(upns)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = sessions[i].get(f"{users_url(sim, upns[i])}/messages?$top=1&$select=subject")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(upns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    sim.set_faults(latency_ms=0)
    return results


@pytest.mark.parametrize("limit,requests_sent", [(4, 5), (2, 6)])
def test_requests_over_the_mailbox_concurrency_limit_get_429(graphsim, limit, requests_sent):
    graphsim.set_faults(concurrency_limit=limit)
    graphsim.reset_stats()
    results = _simultaneously(graphsim, [ALICE] * requests_sent, latency_ms=700)
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] * limit + [429] * (requests_sent - limit)
    for r in results:
        if r.status_code == 429:
            assert graph_error(r) == ("ApplicationThrottled", "Application is over its MailboxConcurrency limit.")
            assert r.headers["Retry-After"] == "1"
    stats = graphsim.stats()
    assert stats["max_in_flight_by_mailbox"][ALICE] == limit
    assert stats["throttled_429"] == requests_sent - limit
    assert stats["throttled_by_reason"] == {"MailboxConcurrency": requests_sent - limit}


def test_concurrency_limit_is_per_mailbox(graphsim):
    results = _simultaneously(graphsim, [ALICE] * 4 + [BOB] * 4, latency_ms=700)
    assert [r.status_code for r in results] == [200] * 8
    assert graphsim.stats()["max_in_flight_by_mailbox"] == {ALICE: 4, BOB: 4}


def test_request_rate_limit_with_retry_after(graphsim):
    s = graphsim.session()
    graphsim.set_faults(rate_limit=(5, 1.0))
    url = f"{users_url(graphsim, ALICE)}/mailFolders/inbox"
    assert [s.get(url).status_code for _ in range(5)] == [200] * 5
    throttled = s.get(url)
    assert throttled.status_code == 429
    assert graph_error(throttled) == ("ApplicationThrottled", "Application is over its RequestRate limit.")
    assert throttled.headers["Retry-After"] == "1"
    assert s.get(f"{users_url(graphsim, BOB)}/mailFolders/inbox").status_code == 200
    time.sleep(float(throttled.headers["Retry-After"]) + 0.05)
    assert s.get(url).status_code == 200
    assert graphsim.stats()["throttled_by_reason"] == {"RequestRate": 1}


def _outcomes(sim, count: int = 60) -> list:
    s = sim.session()
    out = []
    for i in range(count):
        try:
            response = s.get(f"{users_url(sim, ALICE)}/messages?$top=1&$skip={i}&$select=subject")
            out.append(response.status_code)
            if response.status_code in (503, 504):
                assert graph_error(response)[0] in ("ServiceNotAvailable", "GatewayTimeout")
        except requests.ConnectionError:
            out.append("reset")
    return out


def test_injected_faults_are_deterministic_from_the_seed(graphsim_factory):
    options = dict(mailboxes={ALICE: 30}, error_rate=0.3, reset_rate=0.1)
    first = _outcomes(graphsim_factory(seed=11, **options))
    second_sim = graphsim_factory(seed=11, **options)
    assert _outcomes(second_sim) == first
    assert {200, 503, 504, "reset"} <= set(first)
    stats = second_sim.stats()
    assert stats["injected_errors"] == sum(1 for o in first if o in (503, 504))
    assert stats["injected_resets"] == first.count("reset")
    assert _outcomes(graphsim_factory(seed=12, **options)) != first

    second_sim.set_faults(error_rate=0.0, reset_rate=0.0)
    assert set(_outcomes(second_sim, 10)) == {200}


def _delta_outcomes(sim) -> tuple[list, int]:
    """Follow a delta round with retries; returns the statuses seen and the number of items."""
    s = sim.session()
    url = f"{users_url(sim, ALICE)}/mailFolders/inbox/messages/delta?$select=subject"
    statuses, items = [], 0
    while url:
        try:
            response = s.get(url, headers={"Prefer": "odata.maxpagesize=2"})
        except requests.ConnectionError:
            statuses.append("reset")
            continue
        statuses.append(response.status_code)
        if response.status_code == 200:
            body = response.json()
            items += len(body["value"])
            url = body.get("@odata.nextLink")
    return statuses, items


def test_faults_on_delta_pages_repeat_too_and_retries_get_through(graphsim_factory):
    options = dict(mailboxes={ALICE: 30}, error_rate=0.25, reset_rate=0.1)
    first, items = _delta_outcomes(graphsim_factory(seed=21, **options))
    assert _delta_outcomes(graphsim_factory(seed=21, **options)) == (first, items)
    assert set(first) - {200} and items == graphsim_factory(seed=21, mailboxes={ALICE: 30}).mailbox(ALICE).count("inbox")


def test_latency_is_applied_per_request_and_per_item(graphsim):
    s = graphsim.session()
    url = f"{users_url(graphsim, ALICE)}/messages?$select=subject&$top=20"
    graphsim.set_faults(latency_ms=300)
    started = time.monotonic()
    assert s.get(url).status_code == 200
    assert time.monotonic() - started >= 0.3
    graphsim.set_faults(latency_ms=0, latency_per_item_ms=20)
    started = time.monotonic()
    assert s.get(url).status_code == 200
    assert time.monotonic() - started >= 0.4


def test_stats_count_requests_and_reset(graphsim):
    s = graphsim.session()
    graphsim.reset_stats()
    for _ in range(3):
        s.get(f"{users_url(graphsim, ALICE)}/mailFolders")
    s.get(f"{users_url(graphsim, BOB)}/mailFolders")
    graphsim.access_token()
    stats = graphsim.stats()
    assert stats["requests"] == 4
    assert stats["requests_by_mailbox"] == {ALICE: 3, BOB: 1}
    assert stats["token_requests"] == 1
    assert stats["status_counts"] == {"200": 4}
    graphsim.reset_stats()
    assert graphsim.stats()["requests"] == 0
    assert graphsim.faults()["concurrency_limit"] == 4


def test_messages_without_their_body_can_cost_less_than_with_it(graphsim):
    s = graphsim.session()
    graphsim.set_faults(latency_ms=0, latency_per_item_ms=60, latency_per_bodyless_item_ms=6)
    try:
        started = time.monotonic()
        page = s.get(f"{users_url(graphsim, ALICE)}/messages?$top=20&$select=subject,body")
        assert page.status_code == 200 and len(page.json()["value"]) == 20
        assert time.monotonic() - started >= 1.2  # 20 messages x 60 ms, with their bodies
    finally:
        graphsim.set_faults(latency_ms=0, latency_per_item_ms=0, latency_per_bodyless_item_ms=None)
    with_body = [{"id": "a", "subject": "s", "body": {}}, {"id": "b", "body": {}}]
    without = [{"id": "c", "subject": "s"}, {"id": "d", "changeKey": "k"}]  # d: ids only, no content at all
    assert _content_items(with_body + without) == (2, 1)
    shaper = FaultShaper(0, FaultConfig(latency_ms=150, latency_per_item_ms=13, latency_per_bodyless_item_ms=1.3),
                         Stats())
    assert shaper.latency_s(100, 0) == 1.45 and round(shaper.latency_s(0, 100), 6) == 0.28
    assert FaultShaper(0, FaultConfig(latency_per_item_ms=2), Stats()).latency_s(1, 1) == 0.004  # unset: the same
