"""Per-mailbox limit of concurrent Graph requests, shared by every client of the process.

Why: Outlook allows 4 concurrent requests per app and mailbox and answers 429
``MailboxConcurrency`` beyond that (reference/graph-mail.md "Limits"). Activities run in a thread
pool and several of them may read the same mailbox, so the limit must be per process, not per
client. The limit is adaptive: a ``MailboxConcurrency`` answer halves it (at most once per
"generation", so a burst of throttled requests started under the same limit halves it once), and
a run of successes raises it by one again, up to the configured maximum.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Slot:
    """Proof of an acquired slot; remembers the limit generation it was granted under."""

    key: str
    generation: int


class AdaptiveLimiter:
    """A counting semaphore whose capacity moves between 1 and ``max_limit``."""

    def __init__(self, key: str, max_limit: int, *, recover_after: int = 20):
        if max_limit < 1:
            raise ValueError("max_limit must be >= 1")
        self.key = key
        self.max_limit = max_limit
        self.recover_after = recover_after
        self._limit = max_limit
        self._in_flight = 0
        self._generation = 0
        self._successes = 0
        self._peak = 0
        self._lowest = max_limit
        self._cond = threading.Condition()

    # -- observation (tests, logs) --------------------------------------------------------
    @property
    def limit(self) -> int:
        return self._limit

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def peak_in_flight(self) -> int:
        return self._peak

    @property
    def lowest_limit(self) -> int:
        return self._lowest

    # -- slots ----------------------------------------------------------------------------
    def acquire(self, timeout: float | None = None) -> Slot | None:
        """Wait for a free slot; None if ``timeout`` seconds pass first (0 = don't wait)."""
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        with self._cond:
            while self._in_flight >= self._limit:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
            return Slot(self.key, self._generation)

    def release(self, slot: Slot) -> None:
        with self._cond:
            if self._in_flight <= 0:
                raise RuntimeError("release without acquire")
            self._in_flight -= 1
            self._cond.notify()

    # -- feedback -------------------------------------------------------------------------
    def record_success(self, slot: Slot) -> None:
        """A request finished without concurrency throttling; enough of them raise the limit."""
        with self._cond:
            if self._limit >= self.max_limit:
                self._successes = 0
                return
            self._successes += 1
            if self._successes >= self.recover_after:
                self._limit += 1
                self._generation += 1
                self._successes = 0
                self._cond.notify()

    def record_concurrency_throttle(self, slot: Slot) -> None:
        """Graph said MailboxConcurrency: halve the limit, once per generation."""
        with self._cond:
            self._successes = 0
            if slot.generation != self._generation:
                return  # already lowered since this request was granted
            self._limit = max(1, self._limit // 2)
            self._lowest = min(self._lowest, self._limit)
            self._generation += 1


class MailboxLimiters:
    """Registry of limiters by mailbox (case-insensitive), one per process by default."""

    def __init__(self, max_limit: int = 4, *, recover_after: int = 20):
        self.max_limit = max_limit
        self.recover_after = recover_after
        self._by_key: dict[str, AdaptiveLimiter] = {}
        self._lock = threading.Lock()

    def for_mailbox(self, mailbox: str | None) -> AdaptiveLimiter:
        key = (mailbox or "").lower()
        with self._lock:
            limiter = self._by_key.get(key)
            if limiter is None:
                limiter = AdaptiveLimiter(key, self.max_limit, recover_after=self.recover_after)
                self._by_key[key] = limiter
            return limiter


_process_limiters: dict[int, MailboxLimiters] = {}
_process_lock = threading.Lock()


def process_limiters(max_limit: int) -> MailboxLimiters:
    """The process-wide registry for a given maximum (one per distinct setting value)."""
    with _process_lock:
        registry = _process_limiters.get(max_limit)
        if registry is None:
            registry = _process_limiters[max_limit] = MailboxLimiters(max_limit)
        return registry
