"""Queries over the stored mail: filters, search, one message with its body, one attachment.

Filters on stored columns become an OData filter built only from validated values and quoted
literals (no injection through any parameter). `search` (subject, sender, preview) and `from`
(case-insensitive) are applied here, page by page; the cursor records the Table page where a
page of results stopped and how many of its rows were already read, so paging never skips or
repeats a message.
"""
from __future__ import annotations

import asyncio
from datetime import timezone
from typing import Any

from mailextract import paging
from mailextract.errors import InvalidRequest, JobNotFound
from mailextract.extraction.requests import page_limit
from mailextract.validation import validate_address
from mailextract.extraction.service import email_view
from mailextract.jobs import parse_time
from mailextract.settings import Settings, get_settings
from mailextract.storage.keys import odata_literal, validate_connection_id
from mailextract.storage.mail_blobs import MailBlobs
from mailextract.storage.mail_index import MailIndex

TABLE_PAGE = 1000
FILTER_NAMES = ("connection_id", "user_upn", "folder", "is_read", "has_attachments", "from",
                "received_after", "received_before", "search", "include_deleted", "limit", "cursor")


def _bool(name: str, raw: str) -> bool:
    if raw not in ("true", "false"):
        raise InvalidRequest(f"{name} must be true or false", field=name)
    return raw == "true"


def _valid_position(position: dict[str, Any]) -> bool:
    token, skip = position.get("t"), position.get("s")
    return (set(position) <= {"t", "s"} and isinstance(skip, int) and 0 <= skip < TABLE_PAGE
            and (token is None or (isinstance(token, dict) and set(token) <= {"PartitionKey", "RowKey"}
                                   and all(isinstance(v, str) for v in token.values()))))


def message_view(record: dict[str, Any]) -> dict[str, Any]:
    return {**email_view(record), "connection_id": record["connection_id"]}


class MessageQueries:
    def __init__(self, *, settings: Settings | None = None, index: MailIndex | None = None,
                 blobs: MailBlobs | None = None):
        self.settings = settings or get_settings()
        self.index = index or MailIndex(self.settings)
        self.blobs = blobs or MailBlobs(self.settings)

    @staticmethod
    def _plan(params: dict[str, str]) -> tuple[str | None, list]:
        """The OData filter for stored columns, and predicates applied here."""
        params = {k: v for k, v in params.items() if k != "code"}  # the function key, not a filter
        unknown = sorted(set(params) - set(FILTER_NAMES))
        if unknown:
            raise InvalidRequest(f"unknown parameter(s): {', '.join(unknown)}")
        terms, predicates = [], []
        if params.get("connection_id"):
            terms.append(f"PartitionKey eq {odata_literal(validate_connection_id(params['connection_id'], allow_reserved=True))}")
        if params.get("user_upn"):
            terms.append(f"user_upn eq {odata_literal(validate_address(params['user_upn'], 'user_upn'))}")
        if params.get("folder"):
            terms.append(f"folder eq {odata_literal(params['folder'][:1024])}")
        for name in ("is_read", "has_attachments"):
            if params.get(name):
                terms.append(f"{name} eq {'true' if _bool(name, params[name]) else 'false'}")
        after, before = params.get("received_after"), params.get("received_before")
        if after:
            terms.append(f"received_at ge {odata_literal(_iso(after, 'received_after'))}")
        if before:
            terms.append(f"received_at lt {odata_literal(_iso(before, 'received_before'))}")
        if not _bool("include_deleted", params.get("include_deleted") or "false"):
            predicates.append(lambda r: not r.get("deleted_at"))  # kept by syncs, hidden unless asked
        if params.get("from"):
            sender = validate_address(params["from"], "from").casefold()
            predicates.append(lambda r: (r.get("from_address") or "").casefold() == sender)
        if params.get("search"):
            needle = params["search"].strip().casefold()
            if not needle or len(needle) > 200:
                raise InvalidRequest("search must be 1 to 200 characters", field="search")
            predicates.append(lambda r: any(needle in (r.get(f) or "").casefold()
                                            for f in ("subject", "from_address", "from_name", "preview")))
        return (" and ".join(terms) or None), predicates

    def _query(self, params: dict[str, str]) -> dict[str, Any]:
        odata, predicates = self._plan(params)
        size = page_limit(params.get("limit"))
        position = paging.decode(params.get("cursor"), _valid_position) or {"t": None, "s": 0}
        token, skip = position["t"], position["s"]
        found: list[dict[str, Any]] = []
        while True:
            pages = self.index.table.query_entities(odata or "", results_per_page=TABLE_PAGE).by_page(
                continuation_token=token)
            rows = list(next(pages, []))
            next_token = pages.continuation_token
            for offset in range(skip, len(rows)):
                record = self.index.record(rows[offset])
                if all(p(record) for p in predicates):
                    if len(found) == size:
                        return {"messages": found, "next_cursor": paging.encode({"t": token, "s": offset})}
                    found.append(message_view(record))
            if not next_token:
                return {"messages": found, "next_cursor": None}
            token, skip = next_token, 0

    async def search(self, params: dict[str, str]) -> dict[str, Any]:
        return await asyncio.to_thread(self._query, params)

    def _record(self, message_id: str, connection_id: str | None) -> dict[str, Any]:
        if not connection_id:
            raise InvalidRequest("connection_id is required", field="connection_id")
        validate_connection_id(connection_id, allow_reserved=True)
        record = self.index.get(connection_id, message_id)
        if record is None:
            raise JobNotFound(f"no stored message '{message_id[:200]}' for connection '{connection_id}'")
        return record

    def _message(self, message_id: str, connection_id: str | None) -> dict[str, Any]:
        record = self._record(message_id, connection_id)
        body = self._body(record)
        return {**message_view(record), "body": {"format": record.get("body_format"), "content": body}}

    def _body(self, record: dict[str, Any]) -> str:
        if not record.get("body_blob"):
            return ""
        if record.get("body_offset") is None:  # stored before bodies were packed: one blob per message
            return self.blobs.read_bytes(record["body_blob"]).decode("utf-8")
        return self.blobs.read_range(record["body_blob"], record["body_offset"], record["body_length"]).decode("utf-8")

    async def message(self, message_id: str, connection_id: str | None) -> dict[str, Any]:
        return await asyncio.to_thread(self._message, message_id, connection_id)

    def _attachment(self, message_id: str, attachment_id: str, connection_id: str | None):
        record = self._record(message_id, connection_id)
        entry = next((a for a in record.get("attachments") or [] if a.get("id") == attachment_id), None)
        if entry is None or not entry.get("blob"):
            raise JobNotFound(f"no stored attachment '{attachment_id[:200]}' on that message "
                              "(attachments are stored when a run has include_attachments)")
        return entry, self.blobs.read_bytes(entry["blob"])

    async def attachment(self, message_id: str, attachment_id: str, connection_id: str | None):
        return await asyncio.to_thread(self._attachment, message_id, attachment_id, connection_id)


def _iso(raw: str, name: str) -> str:
    try:
        return parse_time(name, raw).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except OverflowError:
        raise InvalidRequest(f"{name} is outside the dates that can be stored", field=name) from None
