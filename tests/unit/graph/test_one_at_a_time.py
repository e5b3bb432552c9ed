"""A step's client sends one Graph request at a time (one_at_a_time.py), through the process's
mailbox limiter as well, and gives its turn back whatever happens to the request."""
from __future__ import annotations

import threading
import time

from mailextract.graph.limiter import MailboxLimiters
from mailextract.graph.one_at_a_time import OneAtATime


def test_requests_of_one_caller_go_one_after_the_other_and_count_in_the_process_limiter():
    process = MailboxLimiters(4)
    step = OneAtATime(process)
    in_flight, peak, lock = 0, 0, threading.Lock()

    def request():
        nonlocal in_flight, peak
        limiter = step.for_mailbox("Alice@contoso.com")
        slot = limiter.acquire(timeout=5)
        assert slot is not None
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        assert process.for_mailbox("alice@contoso.com").in_flight == 1
        time.sleep(0.02)
        with lock:
            in_flight -= 1
        limiter.record_success(slot)
        limiter.release(slot)
    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 1
    assert process.for_mailbox("alice@contoso.com").in_flight == 0


def test_two_callers_each_have_their_own_turn_within_the_mailboxs_four():
    process = MailboxLimiters(4)
    first, second = OneAtATime(process).for_mailbox("a"), OneAtATime(process).for_mailbox("a")
    held = [first.acquire(timeout=0), second.acquire(timeout=0)]
    assert None not in held and process.for_mailbox("a").in_flight == 2
    assert first.acquire(timeout=0.05) is None  # its own turn is taken: it waits, nothing is counted
    assert process.for_mailbox("a").in_flight == 2
    first.release(held[0])
    assert first.acquire(timeout=0) is not None


def test_a_full_process_limiter_gives_the_turn_back():
    process = MailboxLimiters(1)
    other = process.for_mailbox("a").acquire(timeout=0)
    gated = OneAtATime(process).for_mailbox("a")
    assert gated.acquire(timeout=0.05) is None
    process.for_mailbox("a").release(other)
    assert gated.acquire(timeout=0) is not None  # the gate was released when the slot was not had
