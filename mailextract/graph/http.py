"""The HTTP seam: one pooled ``requests.Session`` per process behind a tiny ``HttpSender`` port.

Why: activities run in a thread pool and many of them call Graph at once; one session with a
connection pool sized for that concurrency reuses TLS connections instead of opening one per
call. The session is created on first use (never at import time). TLS trust is left to
``REQUESTS_CA_BUNDLE`` (read by requests on every request), so tests point it at graphsim's CA.

Unit tests replace ``RequestsSender`` with a fake implementing ``HttpSender``; the response only
needs ``status_code``, ``headers`` (case-insensitive), ``json()``, ``content``,
``iter_content()`` and ``close()``.
"""

from __future__ import annotations

import threading
from typing import Any, Iterator, Mapping, Protocol

# Connection pool per host; enough for many mailboxes x 4 in flight in one worker process.
POOL_MAXSIZE = 64
CONNECT_TIMEOUT_SECONDS = 10.0


class HttpResponse(Protocol):
    status_code: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any: ...

    def iter_content(self, chunk_size: int = ...) -> Iterator[bytes]: ...

    def close(self) -> None: ...


class HttpSender(Protocol):
    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        stream: bool,
        timeout: float,
    ) -> HttpResponse: ...


class RequestsSender:
    """``HttpSender`` over a shared, thread-safe ``requests.Session``."""

    def __init__(self, session: Any):
        self.session = session

    def send(self, method, url, *, headers, params, stream, timeout):  # noqa: D401 - port implementation
        return self.session.request(
            method,
            url,
            headers=dict(headers),
            params=params,
            stream=stream,
            timeout=(CONNECT_TIMEOUT_SECONDS, timeout),
            allow_redirects=False,  # never carry the bearer token to another host
        )


_session: Any = None
_session_lock = threading.Lock()


def shared_session() -> Any:
    """The process-wide pooled session (created lazily, thread-safe)."""
    global _session
    with _session_lock:
        if _session is None:
            import requests
            from requests.adapters import HTTPAdapter

            session = requests.Session()
            # Retries are ours (transport.py): the adapter must not retry behind our back.
            adapter = HTTPAdapter(pool_connections=16, pool_maxsize=POOL_MAXSIZE, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            _session = session
        return _session


def shared_sender() -> RequestsSender:
    return RequestsSender(shared_session())
