"""``GraphClient``: the facade the rest of the project uses to read mail from Graph.

Why: activities should say "next page of this cursor" and nothing about tokens, retries or
URLs. ``GraphClient.for_credentials`` returns one client per process per app registration and
endpoint (clients are built on first use, never at import time); all clients share the pooled
session and the per-mailbox limiters of the process.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime
from typing import Any, BinaryIO, Iterable

from mailextract.graph import cursors, mail
from mailextract.graph.auth import MsalTokenProvider, token_provider_for
from mailextract.graph.credentials import GraphCredentials
from mailextract.graph.http import shared_sender
from mailextract.graph.limiter import process_app_window, process_limiters
from mailextract.graph.models import Attachment, DeltaPage, MailFolder, MessagePage
from mailextract.graph.one_at_a_time import OneAtATime
from mailextract.graph.retry import RetryPolicy
from mailextract.graph.transport import GraphTransport
from mailextract.settings import Settings, get_settings

_clients: dict[tuple[Any, ...], "GraphClient"] = {}
_clients_lock = threading.Lock()


class GraphClient:
    """Mail reads for one app registration. Thread-safe; share it."""

    def __init__(self, transport: GraphTransport, *, page_size: int = 100):
        self.transport = transport
        self.page_size = page_size

    # ------------------------------------------------------------------ construction
    @classmethod
    def for_credentials(cls, credentials: GraphCredentials, settings: Settings | None = None, *,
                        cached: bool = True) -> "GraphClient":
        """The process's client for these credentials and endpoints.

        ``cached=False`` builds an independent client with its own token cache (what a fresh
        process would have); the pooled session and mailbox limiters are still shared.
        """
        settings = settings or get_settings()
        if not cached:
            return cls._build(credentials, settings, MsalTokenProvider(
                credentials, settings.azure_authority_host, settings.graph_scope))
        key = (credentials.tenant_id, credentials.client_id, credentials.fingerprint(),
               settings.azure_authority_host, settings.graph_api_endpoint, settings.graph_page_size,
               settings.graph_max_inflight_per_mailbox, settings.graph_max_total_wait_seconds,
               settings.graph_request_timeout_seconds, settings.graph_app_requests_per_10_seconds)
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                tokens = token_provider_for(credentials, settings.azure_authority_host, settings.graph_scope)
                client = _clients[key] = cls._build(credentials, settings, tokens)
            return client

    @classmethod
    def for_request(cls, config: Any = None, settings: Settings | None = None) -> "GraphClient":
        """Client for a request ``config`` (own app registration) or the settings' default app."""
        settings = settings or get_settings()
        return cls.for_credentials(GraphCredentials.resolve(config, settings), settings)

    @classmethod
    def _build(cls, credentials: GraphCredentials, settings: Settings, tokens: Any) -> "GraphClient":
        transport = GraphTransport(
            sender=shared_sender(),
            tokens=tokens,
            limiters=process_limiters(settings.graph_max_inflight_per_mailbox),
            base_url=settings.graph_base_url,
            policy=RetryPolicy(max_total_wait=settings.graph_max_total_wait_seconds),
            request_timeout=settings.graph_request_timeout_seconds,
            app_window=process_app_window(credentials.client_id, settings.graph_app_requests_per_10_seconds),
        )
        return cls(transport, page_size=settings.graph_page_size)

    def until(self, deadline: float) -> "GraphClient":
        """This client for a caller that must be done by `deadline` (time.monotonic()): none of its
        calls waits or retries beyond it (they fail throttled or graph_unavailable instead)."""
        return GraphClient(dataclasses.replace(self.transport, deadline=deadline), page_size=self.page_size)

    def one_request_at_a_time(self) -> "GraphClient":
        """This client for one caller (a lane): its requests go to Graph one after the other
        (one_at_a_time.py says why), sharing the session, tokens and limiters of the process."""
        gated = dataclasses.replace(self.transport, limiters=OneAtATime(self.transport.limiters))
        return GraphClient(gated, page_size=self.page_size)

    # ------------------------------------------------------------------ cursors
    def messages_cursor(self, folder_id: str | None = None, *, received_after: datetime | None = None,
                        received_before: datetime | None = None,
                        select: Iterable[str] | str | None = cursors.DEFAULT_MESSAGE_SELECT,
                        top: int | None = None, orderby: str | None = None,
                        body_type: str = "html") -> dict[str, Any]:
        """Start cursor of a listing (``top`` defaults to ``GRAPH_PAGE_SIZE``)."""
        return cursors.messages_cursor(folder_id, received_after=received_after, received_before=received_before,
                                       select=select, top=top or self.page_size, orderby=orderby,
                                       body_type=body_type)

    def delta_cursor(self, folder_id: str, *, delta_link: str | None = None,
                     received_after: datetime | None = None,
                     select: Iterable[str] | str | None = cursors.DEFAULT_MESSAGE_SELECT,
                     page_size: int | None = None, body_type: str = "html") -> dict[str, Any]:
        """Start cursor of a delta round (fresh, or from a saved deltaLink)."""
        return cursors.delta_cursor(folder_id, delta_link=delta_link, received_after=received_after, select=select,
                                    page_size=page_size or self.page_size, body_type=body_type)

    # ------------------------------------------------------------------ reads
    def list_folders(self, upn: str) -> list[MailFolder]:
        return mail.list_folders(self.transport, upn)

    def list_messages_page(self, upn: str, cursor: dict[str, Any]) -> MessagePage:
        return mail.list_messages_page(self.transport, upn, cursor, default_top=self.page_size)

    def delta_page(self, upn: str, folder_id: str, cursor: dict[str, Any] | None = None) -> DeltaPage:
        """One delta page; ``cursor=None`` starts a fresh round with default options."""
        return mail.delta_page(self.transport, upn, folder_id, cursor or self.delta_cursor(folder_id))

    def get_message(self, upn: str, message_id: str, *, select: Iterable[str] | str | None = None,
                    body_type: str = "html") -> dict[str, Any]:
        return mail.get_message(self.transport, upn, message_id, select=select, body_type=body_type)

    def list_attachments(self, upn: str, message_id: str) -> list[Attachment]:
        return mail.list_attachments(self.transport, upn, message_id)

    def download_attachment(self, upn: str, message_id: str, attachment_id: str, sink: BinaryIO) -> int:
        return mail.download_attachment(self.transport, upn, message_id, attachment_id, sink)

    def download_mime(self, upn: str, message_id: str, sink: BinaryIO) -> int:
        return mail.download_mime(self.transport, upn, message_id, sink)
