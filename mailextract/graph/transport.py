"""One Graph HTTP call, done right: headers, per-mailbox limit, retries, token refresh, error types.

Why: every Graph read needs the same resilience (reference/graph-mail.md "Limits"):
- 429 / 503 / 504 are retried honouring ``Retry-After`` (seconds or HTTP date), otherwise with
  exponential backoff and full jitter; other 5xx and connection resets/timeouts are retried too.
- 429 ``MailboxConcurrency`` lowers this mailbox's in-flight limit (``limiter.py``) before retrying.
- 401 refreshes the token once and retries once.
- 410 / ``syncStateNotFound`` / ``resyncRequired`` -> ``DeltaExpired`` at once; 400/403/404 and
  other 4xx surface at once as typed errors carrying Graph's code and message.
- All waits of one call are bounded (``GRAPH_MAX_TOTAL_WAIT_SECONDS``); the final ``Throttled`` /
  ``GraphUnavailable`` names the mailbox, the call (method + path, no query) and why.

Every request sends ``Prefer: IdType="ImmutableId"`` (graph-mail.md "Ids") plus any caller
preferences in the same comma-separated header. Logs name call, mailbox, status and waits; never
tokens, secrets, query strings or mail content.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Iterable, Mapping, TypeVar
from urllib.parse import urlsplit

from mailextract.errors import (
    AccessDenied,
    AuthenticationFailed,
    DeltaExpired,
    GraphError,
    GraphUnavailable,
    InvalidRequest,
    MailboxNotFound,
    Throttled,
)
from mailextract.graph.auth import TokenEndpointUnavailable, TokenProvider
from mailextract.graph.http import HttpResponse, HttpSender
from mailextract.graph.limiter import MailboxLimiters, RequestWindow
from mailextract.graph.retry import (
    ITEM_NOT_FOUND_CODES,
    RETRYABLE_THROTTLE_STATUSES,
    Clock,
    GraphErrorBody,
    RetryPolicy,
    SystemClock,
    is_delta_expired,
    parse_retry_after,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

IMMUTABLE_ID_PREFERENCE = 'IdType="ImmutableId"'
DOWNLOAD_CHUNK_BYTES = 1024 * 1024


def prefer_header(preferences: Iterable[str]) -> str:
    """``IdType="ImmutableId"`` first, then the caller's preferences, comma-separated, no duplicates."""
    values: list[str] = [IMMUTABLE_ID_PREFERENCE]
    for pref in preferences:
        if pref and pref not in values:
            values.append(pref)
    return ", ".join(values)


def describe_call(method: str, url: str) -> str:
    """``"GET /v1.0/users/x/messages"``: the path only; query strings may carry filters/skip tokens."""
    return f"{method.upper()} {urlsplit(url).path}"


class _Retry(Exception):
    """Internal: this attempt failed in a retryable way."""

    def __init__(self, reason: str, *, throttled: bool, delay: float | None = None, status: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.throttled = throttled  # 429: exhaustion is Throttled, otherwise GraphUnavailable
        self.delay = delay
        self.status = status

    @property
    def is_pacing(self) -> bool:
        """Graph asked us to slow down (429, or 503/504 with Retry-After): only the wait budget
        bounds these, not the attempt limit, so a long storm is ridden out as long as allowed."""
        return self.throttled or (self.status in RETRYABLE_THROTTLE_STATUSES and self.delay is not None)


class _RestartUnsafe(Exception):
    """Internal: a streamed body broke after bytes went to a sink we cannot rewind."""


@dataclass
class GraphTransport:
    """Sends Graph requests for one app registration. Thread-safe; share it."""

    sender: HttpSender
    tokens: TokenProvider
    limiters: MailboxLimiters
    base_url: str  # e.g. https://graph.microsoft.com/v1.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Clock = field(default_factory=SystemClock)
    rand: Callable[[], float] = random.random
    request_timeout: float = 120.0
    app_window: RequestWindow | None = None  # Graph's global per-app rate (limiter.py); None: unbounded
    # When the caller must be done (a clock.monotonic() value): no wait, slot or retry beyond it, so an
    # activity ends well within the host's functionTimeout whatever Graph does. None: the policy's budget only.
    deadline: float | None = None

    # ------------------------------------------------------------------ public helpers
    def url(self, path: str) -> str:
        """Absolute URL of an API path like ``/users/x/messages``."""
        return f"{self.base_url}{path}"

    def check_own_url(self, url: str) -> None:
        """Refuse to send our token anywhere but this Graph endpoint (cursors come from storage)."""
        if not isinstance(url, str) or not url.startswith(self.base_url + "/"):
            raise InvalidRequest("cursor link does not point at the configured Graph endpoint", field="cursor")

    def get_json(
        self, url: str, *, mailbox: str | None, params: Mapping[str, str] | None = None,
        prefer: Iterable[str] = (),
    ) -> dict[str, Any]:
        def read(response: HttpResponse) -> dict[str, Any]:
            try:
                payload = response.json()
            except ValueError:  # invalid JSON: a truncated or garbled answer
                raise _Retry("unreadable JSON answer", throttled=False) from None
            if not isinstance(payload, dict):
                raise GraphError(status=response.status_code, graph_message="answer is not a JSON object",
                                 mailbox=mailbox, call=describe_call("GET", url))
            return payload

        return self.execute("GET", url, mailbox=mailbox, params=params, prefer=prefer, stream=False, read=read,
                            accept="application/json")

    def download(self, url: str, sink: BinaryIO, *, mailbox: str | None, prefer: Iterable[str] = ()) -> int:
        """Stream a ``$value`` body into ``sink``; returns the byte count.

        A connection broken mid-body is retried if ``sink`` can be rewound (seek/truncate);
        otherwise it surfaces as ``GraphUnavailable`` rather than leaving a silently short file.
        """
        start = _tell(sink)

        def read(response: HttpResponse) -> int:
            if start is not None:
                sink.seek(start)
                sink.truncate()
            written = 0
            try:
                for chunk in response.iter_content(DOWNLOAD_CHUNK_BYTES):
                    if chunk:
                        sink.write(chunk)
                        written += len(chunk)
            except _transient_errors():
                if written and start is None:
                    raise _RestartUnsafe() from None
                raise
            return written

        return self.execute("GET", url, mailbox=mailbox, params=None, prefer=prefer, stream=True, read=read)

    # ------------------------------------------------------------------ the loop
    def execute(
        self,
        method: str,
        url: str,
        *,
        mailbox: str | None,
        params: Mapping[str, str] | None,
        prefer: Iterable[str],
        stream: bool,
        read: Callable[[HttpResponse], T],
        accept: str | None = None,
    ) -> T:
        transient = _transient_errors()
        call = describe_call(method, url)
        prefer_value = prefer_header(prefer)
        waited = 0.0
        attempts = 0
        failures = 0  # retries that were not pacing requests (5xx, connection errors)
        token_refreshed = False
        token: str | None = None
        last: _Retry | None = None
        while True:
            attempts += 1
            try:
                token = self.tokens.get_token() if token is None else token
            except TokenEndpointUnavailable as exc:
                last = _Retry(exc.reason, throttled=False)
                failures += 1
                waited = self._wait_or_give_up(last, attempts, failures, waited, mailbox, call)
                continue

            wait_start = self.clock.monotonic()
            window = self.app_window
            room = window is None or window.take(timeout=max(0.0, self._budget_left(waited)))
            waited += self.clock.monotonic() - wait_start
            if not room:
                raise Throttled(mailbox=mailbox, call=call, attempts=attempts, waited_seconds=waited,
                                reason=f"the app's request rate ({window.requests} per {window.seconds:g} s "
                                       f"in this process) is used up within the wait budget")
            wait_start = self.clock.monotonic()
            limiter = self.limiters.for_mailbox(mailbox)  # per attempt: an idle one may have been forgotten
            slot = limiter.acquire(timeout=max(0.0, self._budget_left(waited)))
            waited += self.clock.monotonic() - wait_start
            if slot is None:
                raise Throttled(mailbox=mailbox, call=call, attempts=attempts, waited_seconds=waited,
                                reason=f"no free request slot for the mailbox (limit {limiter.limit}) within the wait budget")
            concurrency_throttled = False
            holding = True
            try:
                headers = {"Authorization": f"Bearer {token}", "Prefer": prefer_value}
                if accept:
                    headers["Accept"] = accept
                try:
                    timeout = self.request_timeout
                    if self.deadline is not None:  # a request cut at the deadline fails as a timeout would
                        timeout = max(1.0, min(timeout, self.deadline - self.clock.monotonic()))
                    response = self.sender.send(method, url, headers=headers, params=params, stream=stream,
                                                timeout=timeout)
                except transient as exc:
                    if _is_certificate_failure(exc):  # misconfigured trust does not heal by retrying
                        raise GraphUnavailable(mailbox=mailbox, call=call, attempts=attempts, waited_seconds=waited,
                                               reason="TLS certificate verification failed (check REQUESTS_CA_BUNDLE)") from None
                    raise _Retry(f"connection error: {type(exc).__name__}", throttled=False) from None
                if not stream:
                    # The whole answer has arrived, so the request is over at Graph: free the slot
                    # before parsing it, letting the next request start while this one is decoded.
                    holding = False
                    limiter.release(slot)
                try:
                    status = response.status_code
                    if 200 <= status < 300:
                        try:
                            result = read(response)
                        except _RestartUnsafe:
                            raise GraphUnavailable(mailbox=mailbox, call=call, attempts=attempts, waited_seconds=waited,
                                                   reason="connection broke mid-download and the sink cannot be rewound") from None
                        except transient as exc:
                            raise _Retry(f"connection error while reading the answer: {type(exc).__name__}",
                                         throttled=False) from None
                        log.debug("graph %s mailbox=%s status=%s attempt=%s", call, mailbox, status, attempts)
                        limiter.record_success(slot)
                        return result
                    body = _error_body(response)
                finally:
                    response.close()

                if status == 401 and not token_refreshed:
                    token_refreshed = True
                    log.info("graph %s mailbox=%s status=401 code=%s: refreshing the token once",
                             call, mailbox, body.code)
                    stale, token = token, None
                    try:
                        token = self.tokens.refresh(stale)
                    except TokenEndpointUnavailable as exc:
                        raise _Retry(exc.reason, throttled=False) from None
                    attempts -= 1  # a refresh is not a failed attempt
                    continue
                if status == 429 or status in RETRYABLE_THROTTLE_STATUSES or status >= 500:
                    if status == 429 and body.is_mailbox_concurrency:
                        concurrency_throttled = True
                        limiter.record_concurrency_throttle(slot)
                    delay = parse_retry_after(response.headers.get("Retry-After"), self.clock.now())
                    what = "MailboxConcurrency" if concurrency_throttled else (body.code or "no code")
                    raise _Retry(f"HTTP {status} {what}: {body.message}".strip(), throttled=(status == 429),
                                 delay=delay, status=status)
                raise self._final_error(status, body, mailbox=mailbox, call=call, token_refreshed=token_refreshed)
            except _Retry as retry:
                last = retry
            finally:
                if holding:
                    limiter.release(slot)
            failures += 0 if last.is_pacing else 1
            waited = self._wait_or_give_up(last, attempts, failures, waited, mailbox, call)

    # ------------------------------------------------------------------ helpers
    def _budget_left(self, waited: float) -> float:
        """Seconds this call may still wait: the policy's total wait, and the caller's deadline."""
        left = self.policy.max_total_wait - waited
        if self.deadline is not None:
            left = min(left, self.deadline - self.clock.monotonic())
        return left

    def _wait_or_give_up(self, last: _Retry, attempts: int, failures: int, waited: float, mailbox: str | None,
                         call: str) -> float:
        delay = last.delay if last.delay is not None else self.policy.backoff(attempts - 1, self.rand)
        budget_left = self._budget_left(waited)
        give_up_reason = None
        if failures >= self.policy.max_attempts:
            give_up_reason = f"{last.reason} (attempt limit {self.policy.max_attempts} reached)"
        elif delay > budget_left:
            give_up_reason = (f"{last.reason} (next wait {delay:.1f}s exceeds the remaining wait budget "
                              f"{max(0.0, budget_left):.1f}s of {self.policy.max_total_wait:g}s)")
        if give_up_reason:
            error_type = Throttled if last.throttled else GraphUnavailable
            log.warning("graph %s mailbox=%s giving up after %s attempts, %.1fs waited: %s",
                        call, mailbox, attempts, waited, give_up_reason)
            raise error_type(mailbox=mailbox, call=call, reason=give_up_reason, attempts=attempts,
                             waited_seconds=waited, status=last.status)
        log.info("graph %s mailbox=%s retry in %.2fs after: %s", call, mailbox, delay, last.reason)
        self.clock.sleep(delay)
        return waited + delay

    @staticmethod
    def _final_error(status: int, body: GraphErrorBody, *, mailbox: str | None, call: str,
                     token_refreshed: bool) -> Exception:
        log.info("graph %s mailbox=%s status=%s code=%s (not retried)", call, mailbox, status, body.code)
        common = dict(status=status, graph_code=body.code or None, graph_message=body.message or None,
                      mailbox=mailbox, call=call)
        if is_delta_expired(status, body):
            return DeltaExpired(**common)
        if status == 401:
            return AuthenticationFailed(
                f"Graph rejected a freshly acquired token on {call}: {body.code} {body.message}".strip(),
                error=body.code or "invalid_token",
            )
        if status == 403:
            return AccessDenied(**common)
        if status == 404 and body.code.lower() not in ITEM_NOT_FOUND_CODES:
            return MailboxNotFound(**common)
        return GraphError(**common)


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Exceptions of the requests-based sender that mean "connection trouble, try again"."""
    import requests

    return (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError)


def _is_certificate_failure(exc: BaseException) -> bool:
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def _error_body(response: HttpResponse) -> GraphErrorBody:
    try:
        return GraphErrorBody.from_json(response.json())
    except Exception:  # non-JSON error pages (proxies, gateways)
        return GraphErrorBody()


def _tell(sink: Any) -> int | None:
    """Position to rewind to on retry, or None if the sink cannot be rewound."""
    try:
        if sink.seekable():
            return sink.tell()
    except (AttributeError, OSError, ValueError):
        pass
    return None
