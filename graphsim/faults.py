"""Fault and load shaping (latency, throttling, injected errors, resets) and the statistics tests read.

Why: the extraction must survive what Exchange Online does under load: 4 concurrent requests per
app and mailbox (the 5th gets 429 MailboxConcurrency), request-rate limits (429 RequestRate with
Retry-After), transient 503/504 and dropped connections, slow pages. All of it is switchable at
run time so a test can provoke exactly one behaviour, and injected faults are drawn from a hash of
(seed, request, occurrence) so a run is reproducible whatever the thread interleaving.

Throttling state is keyed by (app, mailbox), as Graph's limits are; statistics are per mailbox.
"""
from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, fields


@dataclass
class FaultConfig:
    latency_ms: float = 0.0             # added to every Graph request (not Entra, not admin)
    latency_per_item_ms: float = 0.0    # plus this much per message returned with its body (and per folder)
    latency_per_bodyless_item_ms: float | None = None  # ... per message with content but no body (None: as above)
    concurrency_limit: int | None = 4   # in-flight requests per (app, mailbox); None = unlimited
    concurrency_retry_after_s: int = 1
    rate_limit: tuple[int, float] | None = None  # (requests, per_seconds) per (app, mailbox)
    error_rate: float = 0.0             # share of Graph requests answered 503 or 504
    reset_rate: float = 0.0             # share of Graph requests whose TCP connection is aborted
    delta_token_ttl_s: float | None = None
    token_lifetime_s: int = 3600

    def update(self, **changes) -> None:
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise TypeError(f"unknown fault options: {sorted(unknown)}")
        for name, value in changes.items():
            if name == "rate_limit" and value is not None:
                requests, per = value
                value = (int(requests), float(per))
            setattr(self, name, value)
        for rate in (self.error_rate, self.reset_rate):
            if not 0.0 <= rate <= 1.0:
                raise ValueError("error_rate and reset_rate must be between 0 and 1")

    def as_dict(self) -> dict:
        out = asdict(self)
        out["rate_limit"] = list(self.rate_limit) if self.rate_limit else None
        return out


@dataclass
class Throttled:
    reason: str        # "MailboxConcurrency" or "RequestRate"
    retry_after: int   # seconds


class Stats:
    """Counters read by tests and benchmarks (sim.stats())."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.requests_by_mailbox: dict[str, int] = defaultdict(int)
            self.throttled_429 = 0
            self.throttled_by_mailbox: dict[str, int] = defaultdict(int)
            self.throttled_by_reason: dict[str, int] = defaultdict(int)
            self.max_in_flight_by_mailbox: dict[str, int] = defaultdict(int)
            self.token_requests = 0
            self.tokens_issued = 0
            self.injected_errors = 0
            self.injected_resets = 0
            self.delta_gone_410 = 0
            self.status_counts: dict[str, int] = defaultdict(int)
            self.bytes_streamed = 0

    def bump(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def bump_map(self, name: str, key: str, amount: int = 1) -> None:
        with self._lock:
            getattr(self, name)[key] += amount

    def observe_in_flight(self, upn: str, value: int) -> None:
        with self._lock:
            if value > self.max_in_flight_by_mailbox[upn]:
                self.max_in_flight_by_mailbox[upn] = value

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "requests": self.requests,
                "requests_by_mailbox": dict(self.requests_by_mailbox),
                "throttled_429": self.throttled_429,
                "throttled_by_mailbox": dict(self.throttled_by_mailbox),
                "throttled_by_reason": dict(self.throttled_by_reason),
                "max_in_flight_by_mailbox": dict(self.max_in_flight_by_mailbox),
                "token_requests": self.token_requests,
                "tokens_issued": self.tokens_issued,
                "injected_errors": self.injected_errors,
                "injected_resets": self.injected_resets,
                "delta_gone_410": self.delta_gone_410,
                "status_counts": dict(self.status_counts),
                "bytes_streamed": self.bytes_streamed,
            }


class FaultShaper:
    """Decides, per Graph request, whether it is throttled, faulted or delayed."""

    def __init__(self, seed: int, config: FaultConfig, stats: Stats) -> None:
        self.seed = seed
        self.config = config
        self.stats = stats
        self._lock = threading.Lock()
        self._in_flight: dict[tuple[str, str], int] = defaultdict(int)
        self._in_flight_mailbox: dict[str, int] = defaultdict(int)
        self._windows: dict[tuple[str, str], deque] = defaultdict(deque)
        self._occurrences: dict[str, int] = defaultdict(int)

    def reset_counters(self) -> None:
        """Forget rate windows and fault draw counters (not requests currently in flight)."""
        with self._lock:
            self._windows.clear()
            self._occurrences.clear()

    def admit(self, app: str, upn: str) -> Throttled | None:
        """Take an in-flight slot for (app, mailbox), or say why the request is throttled."""
        key = (app, upn.lower())
        cfg = self.config
        with self._lock:
            limit = cfg.concurrency_limit
            if limit is not None and self._in_flight[key] >= limit:
                return Throttled("MailboxConcurrency", cfg.concurrency_retry_after_s)
            if cfg.rate_limit is not None:
                count, per = cfg.rate_limit
                window = self._windows[key]
                now = time.monotonic()
                while window and window[0] <= now - per:
                    window.popleft()
                if len(window) >= count:
                    wait = window[0] + per - now
                    return Throttled("RequestRate", max(1, math.ceil(wait)))
                window.append(now)
            self._in_flight[key] += 1
            self._in_flight_mailbox[upn] += 1
            current = self._in_flight_mailbox[upn]
        self.stats.observe_in_flight(upn, current)
        return None

    def release(self, app: str, upn: str) -> None:
        with self._lock:
            self._in_flight[(app, upn.lower())] -= 1
            self._in_flight_mailbox[upn] -= 1

    def draw(self, method: str, path_qs: str) -> str | None:
        """'reset', '503', '504' or None, from a hash of (seed, request, nth time it is seen)."""
        cfg = self.config
        if cfg.error_rate <= 0 and cfg.reset_rate <= 0:
            return None
        key = f"{method} {path_qs}"
        with self._lock:
            n = self._occurrences[key]
            self._occurrences[key] = n + 1
        digest = hashlib.blake2b(f"{self.seed}|{key}|{n}".encode(), digest_size=8).digest()
        u = int.from_bytes(digest, "big") / 2 ** 64
        if u < cfg.reset_rate:
            return "reset"
        if u < cfg.reset_rate + cfg.error_rate:
            return "503" if digest[0] & 1 else "504"
        return None

    def latency_s(self, items: int, bodyless: int = 0) -> float:
        cfg = self.config
        bodyless_ms = cfg.latency_per_item_ms if cfg.latency_per_bodyless_item_ms is None \
            else cfg.latency_per_bodyless_item_ms
        return max(0.0, cfg.latency_ms + cfg.latency_per_item_ms * items + bodyless_ms * bodyless) / 1000.0
