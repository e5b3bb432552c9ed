"""Microsoft Graph access for mail extraction.

Modules, one job each:
- ``client``: ``GraphClient`` facade (cached per process per app registration and endpoint).
- ``mail``: every Graph mail URL: folders, message pages, delta, attachments, MIME.
- ``cursors``: resumable, JSON-serialisable paging cursors.
- ``query``: safe ``$filter``/``$select``/``$orderby`` values and path segments.
- ``transport``: one call with headers, limits, retries, token refresh and typed errors.
- ``limiter``: adaptive per-mailbox in-flight limit shared by the process.
- ``retry``: clock seam, Retry-After parsing, backoff, Graph error bodies.
- ``auth``: MSAL client-credentials tokens; ``credentials``: where app credentials come from.
- ``http``: pooled ``requests`` session behind the ``HttpSender`` port; ``models``: records.
"""

from mailextract.graph.client import GraphClient
from mailextract.graph.credentials import GraphCredentials
from mailextract.graph.cursors import DEFAULT_MESSAGE_SELECT, delta_cursor, messages_cursor
from mailextract.graph.models import Attachment, DeltaPage, MailFolder, MessagePage, RemovedItem

__all__ = [
    "Attachment",
    "DEFAULT_MESSAGE_SELECT",
    "DeltaPage",
    "GraphClient",
    "GraphCredentials",
    "MailFolder",
    "MessagePage",
    "RemovedItem",
    "delta_cursor",
    "messages_cursor",
]
