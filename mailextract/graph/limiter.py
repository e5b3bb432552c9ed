"""Per-mailbox limit of concurrent Graph requests, shared by every client of the process.

Why: Outlook allows 4 concurrent requests per app and mailbox and answers 429
``MailboxConcurrency`` beyond that (reference/graph-mail.md "Limits"). Activities run in a thread
pool and several of them may read the same mailbox, so the limit must be per process, not per
client. The limit is adaptive: a ``MailboxConcurrency`` answer halves it (at most once per
"generation", so a burst of throttled requests started under the same limit halves it once), and
a run of successes raises it by one again, up to the configured maximum.

It also keeps each mailbox under Graph's request rate, 10,000 requests per 10 minutes per app and
mailbox (graph-mail.md): a sliding window of the request starts it granted, so a fast Graph (or
many activities on one mailbox) waits for the window instead of being answered 429 RequestRate.
Across mailboxes, a ``RequestWindow`` per app registration keeps the process under Graph's global
limit, 130,000 requests per 10 seconds per app (``GRAPH_APP_REQUESTS_PER_10_SECONDS``: lower it to
the process's share when the app runs on several instances).
These limits hold per process; across instances the 429 answers and their Retry-After still rule.

A worker that serves thousands of mailboxes must not keep a limiter for each one it ever read:
the registry forgets a mailbox's limiter once it has been idle for a whole rate window (nothing in
flight, no request start inside the window, not handed out since); the mailbox's next request
gets a fresh one.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from mailextract.graph.retry import Clock, SystemClock


GRAPH_MAILBOX_RATE = (10_000, 600.0)  # requests per seconds, per app and mailbox
GRAPH_APP_RATE_SECONDS = 10.0  # Graph's global limit counts requests per app over 10 seconds


def _drop_expired(starts: deque[float], now: float, seconds: float) -> None:
    """Forget the request starts (oldest first) that have left a sliding window of `seconds`."""
    while starts and now - starts[0] >= seconds:
        starts.popleft()


@dataclass(frozen=True)
class Slot:
    """Proof of an acquired slot; remembers the limit generation it was granted under."""

    key: str
    generation: int


class AdaptiveLimiter:
    """A counting semaphore whose capacity moves between 1 and ``max_limit``."""

    def __init__(self, key: str, max_limit: int, *, recover_after: int = 20,
                 rate: tuple[int, float] = GRAPH_MAILBOX_RATE, clock=time.monotonic):
        if max_limit < 1:
            raise ValueError("max_limit must be >= 1")
        self.key = key
        self.max_limit = max_limit
        self.recover_after = recover_after
        self.rate_requests, self.rate_seconds = rate
        self._clock = clock
        self._starts: deque[float] = deque()  # request starts inside the rate window
        self._limit = max_limit
        self._in_flight = 0
        self._generation = 0
        self._successes = 0
        self._peak = 0
        self._lowest = max_limit
        self._handed_out_at = clock()  # when the registry last gave this limiter to a caller
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
        """Wait for a free slot within the rate; None if ``timeout`` seconds pass first (0 = don't wait)."""
        deadline = None if timeout is None else self._clock() + max(0.0, timeout)
        with self._cond:
            while True:
                now = self._clock()
                _drop_expired(self._starts, now, self.rate_seconds)
                if self._in_flight < self._limit and len(self._starts) < self.rate_requests:
                    break
                remaining = None if deadline is None else deadline - now
                if remaining is not None and remaining <= 0:
                    return None
                waits = [remaining] if remaining is not None else []
                if self._in_flight < self._limit:  # only the rate window is full: wait for its oldest
                    waits.append(self._starts[0] + self.rate_seconds - now)
                self._cond.wait(min(waits) if waits else None)
            self._starts.append(now)
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
            return Slot(self.key, self._generation)

    def idle(self) -> bool:
        """Nothing in flight, and a whole rate window since its last request start and since the
        registry last handed it out (no caller can be waiting then: a wait needs a request in
        flight or a start in the window). A limit lowered by MailboxConcurrency is forgotten too:
        that long after the mailbox's last request, Graph counts none of ours in flight."""
        with self._cond:
            now = self._clock()
            _drop_expired(self._starts, now, self.rate_seconds)
            return self._in_flight == 0 and not self._starts and now - self._handed_out_at >= self.rate_seconds

    def handed_out(self) -> None:
        with self._cond:
            self._handed_out_at = self._clock()

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
    """Registry of limiters by mailbox (case-insensitive), one per process by default.

    Callers take the limiter right before acquiring a slot, for every attempt (transport.py): the
    registry forgets idle limiters (AdaptiveLimiter.idle), at most once per SWEEP_SECONDS, and one
    handed out within the last rate window is never idle.
    """

    SWEEP_SECONDS = 60.0

    def __init__(self, max_limit: int = 4, *, recover_after: int = 20, clock=time.monotonic):
        self.max_limit = max_limit
        self.recover_after = recover_after
        self._clock = clock
        self._by_key: dict[str, AdaptiveLimiter] = {}
        self._swept_at = clock()
        self._lock = threading.Lock()

    @property
    def mailboxes_held(self) -> int:
        """How many mailboxes have a limiter now (tests, logs)."""
        return len(self._by_key)

    def for_mailbox(self, mailbox: str | None) -> AdaptiveLimiter:
        key = (mailbox or "").lower()
        with self._lock:
            now = self._clock()
            if now - self._swept_at >= self.SWEEP_SECONDS:
                self._swept_at = now
                self._by_key = {k: held for k, held in self._by_key.items() if not held.idle()}
            limiter = self._by_key.get(key)
            if limiter is None:
                limiter = AdaptiveLimiter(key, self.max_limit, recover_after=self.recover_after, clock=self._clock)
                self._by_key[key] = limiter
            limiter.handed_out()
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


class RequestWindow:
    """At most ``requests`` request starts in any ``seconds``: a sliding window shared by threads.

    Starts only leave the window as time passes, so a caller that finds it full sleeps until the
    oldest start leaves (through ``clock``, which unit tests make instant) instead of waiting to
    be notified.
    """

    def __init__(self, requests: int, seconds: float, clock: Clock | None = None):
        if requests < 1:
            raise ValueError("requests must be >= 1")
        self.requests, self.seconds = requests, seconds
        self._clock = clock or SystemClock()
        self._starts: deque[float] = deque()
        self._lock = threading.Lock()

    def take(self, timeout: float) -> bool:
        """Count one request start, waiting for room up to ``timeout`` seconds; False if there is
        none by then (nothing is counted)."""
        deadline = self._clock.monotonic() + max(0.0, timeout)
        while True:
            with self._lock:
                now = self._clock.monotonic()
                _drop_expired(self._starts, now, self.seconds)
                if len(self._starts) < self.requests:
                    self._starts.append(now)
                    return True
                room_at = self._starts[0] + self.seconds
            if room_at > deadline:
                return False
            self._clock.sleep(room_at - now)


_app_windows: dict[tuple[str, int], RequestWindow] = {}


def process_app_window(client_id: str, requests_per_10_seconds: int) -> RequestWindow:
    """The process-wide window of one app registration (one per distinct setting value)."""
    with _process_lock:
        key = (client_id.lower(), requests_per_10_seconds)
        window = _app_windows.get(key)
        if window is None:
            window = _app_windows[key] = RequestWindow(requests_per_10_seconds, GRAPH_APP_RATE_SECONDS)
        return window
