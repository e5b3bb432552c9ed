"""One Graph request at a time for a caller that holds one of a mailbox's 4 request slots.

Why: Outlook answers a fifth concurrent request of an app to one mailbox with 429
MailboxConcurrency (docs/graph-limits.md). The process's per-mailbox limiter (limiter.py) counts
within one process only, and on Azure the lanes of a run execute on several instances. So the
orchestration runs at most 4 lanes of a mailbox at once, and each lane sends its requests (pages,
message contents, attachments) one after the other through a gate of its own: Graph then sees at
most 4 requests for the mailbox, whichever instances the lanes run on. The process's limiter is
still taken inside the gate, as a second line.
"""
from __future__ import annotations

import threading
import time

from mailextract.graph.limiter import AdaptiveLimiter, MailboxLimiters, Slot


class GatedLimiter:
    """A mailbox limiter that first takes the caller's gate (one request at a time)."""

    def __init__(self, inner: AdaptiveLimiter, gate: threading.Semaphore):
        self.inner = inner
        self.gate = gate

    @property
    def limit(self) -> int:
        return self.inner.limit

    def acquire(self, timeout: float | None = None) -> Slot | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self.gate.acquire(timeout=timeout):
            return None
        slot = self.inner.acquire(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
        if slot is None:
            self.gate.release()
        return slot

    def release(self, slot: Slot) -> None:
        self.inner.release(slot)
        self.gate.release()

    def record_success(self, slot: Slot) -> None:
        self.inner.record_success(slot)

    def record_concurrency_throttle(self, slot: Slot) -> None:
        self.inner.record_concurrency_throttle(slot)


class OneAtATime:
    """Limiters of a transport used by one caller (a step): each request passes its one gate."""

    def __init__(self, inner: MailboxLimiters):
        self.inner = inner
        self.gate = threading.Semaphore(1)

    def for_mailbox(self, mailbox: str | None) -> GatedLimiter:
        return GatedLimiter(self.inner.for_mailbox(mailbox), self.gate)
