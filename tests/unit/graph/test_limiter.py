"""Adaptive per-mailbox limiter: cap, halving on MailboxConcurrency, recovery, sharing; the app's
request window."""

import threading
import time

from mailextract.graph.limiter import (AdaptiveLimiter, MailboxLimiters, RequestWindow, process_app_window,
                                      process_limiters)
from tests.unit.graph.fakes import FakeClock as InstantClock  # monotonic() and an instant sleep()


def test_at_most_the_limit_is_granted():
    limiter = AdaptiveLimiter("a", 4)
    slots = [limiter.acquire(timeout=0) for _ in range(4)]
    assert all(slots) and limiter.in_flight == 4
    assert limiter.acquire(timeout=0) is None
    limiter.release(slots[0])
    assert limiter.acquire(timeout=0) is not None


def test_concurrency_throttle_halves_once_per_generation_and_never_below_one():
    limiter = AdaptiveLimiter("a", 4)
    slots = [limiter.acquire(timeout=0) for _ in range(4)]
    for slot in slots:  # a burst of 4 throttled answers started under the same limit
        limiter.record_concurrency_throttle(slot)
    assert limiter.limit == 2
    for slot in slots:
        limiter.release(slot)
    s = limiter.acquire(timeout=0)
    limiter.record_concurrency_throttle(s)
    assert limiter.limit == 1
    limiter.release(s)
    s = limiter.acquire(timeout=0)
    limiter.record_concurrency_throttle(s)
    assert limiter.limit == 1
    limiter.release(s)


def test_lowered_limit_blocks_new_requests_until_in_flight_drops():
    limiter = AdaptiveLimiter("a", 4)
    slots = [limiter.acquire(timeout=0) for _ in range(3)]
    limiter.record_concurrency_throttle(slots[0])  # -> 2, with 3 in flight
    assert limiter.acquire(timeout=0) is None
    limiter.release(slots[0])
    assert limiter.acquire(timeout=0) is None  # 2 in flight, limit 2
    limiter.release(slots[1])
    assert limiter.acquire(timeout=0) is not None


def test_limit_creeps_back_up_after_successes():
    limiter = AdaptiveLimiter("a", 4, recover_after=3)
    s = limiter.acquire(timeout=0)
    limiter.record_concurrency_throttle(s)
    limiter.release(s)
    assert limiter.limit == 2
    for expected in (2, 2, 3, 3, 3, 4, 4, 4, 4):
        s = limiter.acquire(timeout=0)
        limiter.record_success(s)
        limiter.release(s)
        assert limiter.limit == expected


def test_a_throttle_resets_the_success_run():
    limiter = AdaptiveLimiter("a", 4, recover_after=3)
    s = limiter.acquire(timeout=0)
    limiter.record_concurrency_throttle(s)  # 2
    limiter.release(s)
    for _ in range(2):
        s = limiter.acquire(timeout=0)
        limiter.record_success(s)
        limiter.release(s)
    s = limiter.acquire(timeout=0)
    limiter.record_concurrency_throttle(s)  # 1, run reset
    limiter.release(s)
    for _ in range(2):
        s = limiter.acquire(timeout=0)
        limiter.record_success(s)
        limiter.release(s)
    assert limiter.limit == 1


def test_threads_never_exceed_the_limit():
    limiter = AdaptiveLimiter("a", 4)
    barrier = threading.Barrier(12)

    def work():
        barrier.wait()
        for _ in range(20):
            slot = limiter.acquire(timeout=5)
            assert slot is not None
            time.sleep(0.0005)
            limiter.release(slot)

    threads = [threading.Thread(target=work) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert limiter.peak_in_flight == 4 and limiter.in_flight == 0


def test_acquire_waits_for_a_release():
    limiter = AdaptiveLimiter("a", 1)
    slot = limiter.acquire(timeout=0)
    threading.Timer(0.05, limiter.release, args=(slot,)).start()
    assert limiter.acquire(timeout=5) is not None


def test_registry_is_per_mailbox_case_insensitive_and_process_wide():
    registry = MailboxLimiters(4)
    assert registry.for_mailbox("Alice@Contoso.com") is registry.for_mailbox("alice@contoso.com")
    assert registry.for_mailbox("alice@contoso.com") is not registry.for_mailbox("bob@contoso.com")
    assert process_limiters(4) is process_limiters(4)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


WINDOW = 600.0  # Graph's request-rate window per app and mailbox (GRAPH_MAILBOX_RATE)


def test_the_registry_forgets_a_mailbox_idle_for_a_whole_rate_window_and_only_then():
    clock = FakeClock()
    registry = MailboxLimiters(4, clock=clock)
    read = registry.for_mailbox("read@contoso.com")
    read.release(read.acquire(timeout=0))
    clock.now += WINDOW - 1
    registry.for_mailbox("other@contoso.com")
    assert registry.mailboxes_held == 2  # swept, but its last start is still in the window
    clock.now += MailboxLimiters.SWEEP_SECONDS
    registry.for_mailbox("other@contoso.com")
    assert registry.mailboxes_held == 1  # swept: no start in the window, not handed out since
    fresh = registry.for_mailbox("read@contoso.com")
    assert fresh is not read and (fresh.limit, fresh.in_flight) == (4, 0)


def test_a_limiter_in_use_or_just_handed_out_is_kept_however_long_ago_its_last_start():
    clock = FakeClock()
    registry = MailboxLimiters(4, clock=clock)
    busy = registry.for_mailbox("busy@contoso.com")
    busy.acquire(timeout=0)  # a request that never ended
    taken = registry.for_mailbox("taken@contoso.com")  # handed out, no request yet
    clock.now += WINDOW - 1
    assert registry.for_mailbox("taken@contoso.com") is taken  # handed out again: a new window starts
    clock.now += WINDOW - 1
    assert registry.for_mailbox("busy@contoso.com") is busy and registry.for_mailbox("taken@contoso.com") is taken


def test_a_lowered_limit_is_forgotten_with_its_idle_limiter():
    clock = FakeClock()
    registry = MailboxLimiters(4, clock=clock)
    throttled = registry.for_mailbox("a@contoso.com")
    slot = throttled.acquire(timeout=0)
    throttled.record_concurrency_throttle(slot)
    throttled.release(slot)
    assert registry.for_mailbox("a@contoso.com").limit == 2
    clock.now += WINDOW
    registry.for_mailbox("b@contoso.com")
    assert registry.for_mailbox("a@contoso.com").limit == 4


def test_request_rate_window_holds_requests_until_its_oldest_start_leaves_it():
    clock = FakeClock()
    limiter = AdaptiveLimiter("a", 4, rate=(3, 10.0), clock=clock)
    for _ in range(3):
        limiter.release(limiter.acquire(timeout=0))
        clock.now += 1
    assert limiter.acquire(timeout=0) is None  # 3 starts in the last 10 s, though no request is in flight
    clock.now = 1009.9
    assert limiter.acquire(timeout=0) is None
    clock.now = 1010.0  # the first start leaves the window
    assert limiter.acquire(timeout=0) is not None
    assert limiter.acquire(timeout=0) is None


def test_a_waiter_on_the_rate_window_is_granted_when_the_window_moves():
    limiter = AdaptiveLimiter("a", 4, rate=(1, 0.2))
    limiter.release(limiter.acquire(timeout=0))
    started = time.monotonic()
    assert limiter.acquire(timeout=5) is not None
    assert time.monotonic() - started >= 0.15  # it waited for the window, not for a release


def test_graphs_mailbox_rate_is_the_default():
    limiter = AdaptiveLimiter("a", 4)
    assert (limiter.rate_requests, limiter.rate_seconds) == (10_000, 600.0)


# --- the app's request window (Graph's global limit per app) ---------------------------------
def test_an_app_window_grants_its_requests_then_refuses_without_counting():
    clock = InstantClock()
    window = RequestWindow(3, 10.0, clock=clock)
    granted = []
    for _ in range(4):  # starts at t = 0, 1, 2; the fourth finds the window full
        granted.append(window.take(timeout=0))
        clock.sleep(1.0)
    assert granted == [True, True, True, False]
    clock.sleep(5.9)  # t = 9.9
    assert window.take(timeout=0) is False  # the start at t=0 is still inside the window
    clock.sleep(0.1)  # t = 10: it left
    assert window.take(timeout=0) is True and window.take(timeout=0) is False


def test_a_caller_with_time_left_sleeps_until_the_oldest_start_leaves():
    clock = InstantClock()
    window = RequestWindow(2, 10.0, clock=clock)
    window.take(timeout=0)
    clock.sleep(4.0)
    window.take(timeout=0)
    clock.sleeps.clear()
    assert window.take(timeout=30) is True
    assert clock.sleeps == [6.0]  # until the start at t=0 is 10 s old, not a full window


def test_a_caller_whose_budget_ends_first_is_refused_at_once():
    clock = InstantClock()
    window = RequestWindow(1, 10.0, clock=clock)
    window.take(timeout=0)
    assert window.take(timeout=5) is False and clock.sleeps == []


def test_one_app_window_per_app_registration_in_a_process():
    assert process_app_window("App-1", 500) is process_app_window("app-1", 500)
    assert process_app_window("app-1", 500) is not process_app_window("app-2", 500)
    assert process_app_window("app-1", 500).requests == 500
