"""Hand-written fakes of the Graph layer's ports (HttpSender, Clock, TokenProvider).

They record what the code under test did so tests can assert exact requests, waits and token
refreshes without patching internals.
"""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator
from urllib.parse import parse_qsl, urlsplit

import requests
from requests.structures import CaseInsensitiveDict

from mailextract.graph.limiter import MailboxLimiters, RequestWindow
from mailextract.graph.retry import RetryPolicy
from mailextract.graph.transport import GraphTransport

BASE = "https://graph.test/v1.0"


class FakeClock:
    """Starts at 2024-05-01T12:00:00Z; ``sleep`` returns at once and advances time."""

    def __init__(self, start: datetime = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)):
        self.start = start
        self.elapsed = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.elapsed

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.elapsed += seconds


class FakeTokens:
    """Issues tok-1, tok-2, ...; ``refresh`` issues the next one and is counted."""

    def __init__(self) -> None:
        self.issued = 1
        self.refreshes: list[str] = []

    @property
    def current(self) -> str:
        return f"tok-{self.issued}"

    def get_token(self) -> str:
        return self.current

    def refresh(self, rejected: str) -> str:
        self.refreshes.append(rejected)
        self.issued += 1
        return self.current


class FakeResponse:
    """Enough of ``requests.Response`` for the transport."""

    def __init__(self, status: int = 200, body: Any = None, *, headers: dict[str, str] | None = None,
                 content: bytes | None = None, chunks: list[bytes | Exception] | None = None):
        self.status_code = status
        self.headers = CaseInsensitiveDict(headers or {})
        self._body = body
        self.content = content if content is not None else (json.dumps(body).encode() if body is not None else b"")
        self._chunks = chunks
        self.closed = False

    def json(self) -> Any:
        if self._body is None:
            return json.loads(self.content.decode() or "null")
        return self._body

    def iter_content(self, chunk_size: int = 1) -> Iterator[bytes]:
        for chunk in self._chunks if self._chunks is not None else [self.content]:
            if isinstance(chunk, Exception):
                raise chunk
            yield chunk

    def close(self) -> None:
        self.closed = True


def graph_error(status: int, code: str, message: str = "", headers: dict[str, str] | None = None) -> FakeResponse:
    return FakeResponse(status, {"error": {"code": code, "message": message}}, headers=headers)


@dataclass
class SentRequest:
    method: str
    url: str
    headers: dict[str, str]
    params: dict[str, str] | None

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, str]:
        merged = dict(parse_qsl(urlsplit(self.url).query))
        merged.update(self.params or {})
        return merged


Handler = Callable[[SentRequest], "FakeResponse | Exception"]


@dataclass
class FakeSender:
    """Answers with a scripted list (one entry per request) or a handler function."""

    script: list[FakeResponse | Exception] = field(default_factory=list)
    handler: Handler | None = None
    sent: list[SentRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, method, url, *, headers, params, stream, timeout):
        request = SentRequest(method, url, dict(headers), dict(params) if params is not None else None)
        with self.lock:
            self.sent.append(request)
            answer = self.handler(request) if self.handler else self.script.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def make_transport(sender: FakeSender, *, clock: FakeClock | None = None, tokens: FakeTokens | None = None,
                   limiters: MailboxLimiters | None = None, max_total_wait: float = 300.0,
                   max_attempts: int = 12, rand: Callable[[], float] = lambda: 0.5,
                   app_window: RequestWindow | None = None) -> GraphTransport:
    return GraphTransport(
        sender=sender,
        tokens=tokens or FakeTokens(),
        limiters=limiters or MailboxLimiters(4),
        base_url=BASE,
        policy=RetryPolicy(max_total_wait=max_total_wait, max_attempts=max_attempts),
        clock=clock or FakeClock(),
        rand=rand,
        app_window=app_window,
    )


def connection_reset() -> Exception:
    return requests.ConnectionError("Connection reset by peer")


class UnseekableSink(io.RawIOBase):
    """A write-only stream that cannot rewind (like a socket or a pipe)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, b) -> int:  # type: ignore[override]
        self.data.extend(b)
        return len(b)
