"""Adaptive per-mailbox limiter: cap, halving on MailboxConcurrency, recovery, sharing."""

import threading
import time

from mailextract.graph.limiter import AdaptiveLimiter, MailboxLimiters, process_limiters


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
