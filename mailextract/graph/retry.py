"""Retry policy pieces: the clock seam, Retry-After parsing, backoff, Graph error bodies.

Why: Graph throttles per app and mailbox and tells how long to wait (reference/graph-mail.md
"Limits": 429 ``ApplicationThrottled`` with ``Retry-After``; 503/504 may also mean throttling;
without ``Retry-After`` back off exponentially). These functions are pure so the unit tests pin
them down with a fake clock and fixed randomness; ``transport.py`` strings them together.
"""

from __future__ import annotations

import email.utils
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Protocol


class Clock(Protocol):
    """Time seam: real in production, fake (instant sleeps) in unit tests."""

    def monotonic(self) -> float: ...

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, or None if absent/unusable.

    Accepts delay-seconds (``"7"``; Graph sends integers, fractions are tolerated) and an HTTP
    date (``"Wed, 21 Oct 2015 07:28:00 GMT"``, waiting until then, never negative).
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
            return None
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # HTTP dates are GMT
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often one Graph call may be retried.

    ``max_total_wait`` bounds the sum of all waits of one call (setting
    ``GRAPH_MAX_TOTAL_WAIT_SECONDS``); ``max_attempts`` bounds the failed tries that were not
    Graph pacing us (5xx without ``Retry-After``, connection errors). Throttling answers are bounded
    by the wait budget only: a storm is ridden out for as long as the budget allows.
    """

    max_total_wait: float = 300.0
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_attempts: int = 12

    def backoff(self, retry_number: int, rand: Callable[[], float]) -> float:
        """Exponential backoff with full jitter: uniform in [0, min(max_delay, base * 2**n)).

        ``retry_number`` counts from 0; ``rand()`` returns a float in [0, 1).
        """
        ceiling = min(self.max_delay, self.base_delay * (2 ** min(retry_number, 32)))
        return ceiling * rand()


@dataclass(frozen=True)
class GraphErrorBody:
    """``{"error": {"code": ..., "message": ...}}`` of a Graph answer (both may be empty)."""

    code: str = ""
    message: str = ""

    @classmethod
    def from_json(cls, payload: Any) -> "GraphErrorBody":
        if isinstance(payload, dict):
            error = payload.get("error")
            if isinstance(error, dict):
                return cls(str(error.get("code") or ""), str(error.get("message") or ""))
            if isinstance(error, str):  # OAuth-style {"error": "...", "error_description": "..."}
                return cls(error, str(payload.get("error_description") or ""))
        return cls()

    @property
    def is_mailbox_concurrency(self) -> bool:
        """429 whose message names ``MailboxConcurrency`` (graph-mail.md "Limits")."""
        return "mailboxconcurrency" in f"{self.code} {self.message}".lower()


# Graph codes for an expired delta state (graph-mail.md "Delta": restart that folder).
DELTA_EXPIRED_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})
# 404 codes that name a missing item inside an existing mailbox rather than the mailbox itself.
ITEM_NOT_FOUND_CODES = frozenset({"erroritemnotfound", "itemnotfound", "errorfoldernotfound", "errorattachmentnotfound"})

RETRYABLE_THROTTLE_STATUSES = frozenset({429, 503, 504})


def is_delta_expired(status: int, body: GraphErrorBody) -> bool:
    return status == 410 or body.code.lower() in DELTA_EXPIRED_CODES
