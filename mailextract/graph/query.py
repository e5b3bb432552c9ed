"""Building OData query values and URL paths safely.

Why: query values end up inside Graph's ``$filter``/``$select``/``$orderby`` and user or folder
ids end up in URL paths. Dates are accepted only as timezone-aware ``datetime`` objects and
formatted here (never caller strings spliced into a filter); field names must look like field
names; path segments are percent-encoded. Bad input raises ``InvalidRequest`` naming the field.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Iterable
from urllib.parse import quote

from mailextract.errors import InvalidRequest

MAX_TOP = 1000  # graph-mail.md "Listing and paging": $top 1..1000
BODY_TYPES = ("html", "text")

_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*$")
_ORDER_TERM = re.compile(r"^([A-Za-z][A-Za-z0-9_]*(?:/[A-Za-z][A-Za-z0-9_]*)*)(?: (asc|desc))?$")


def odata_datetime(value: object, field: str) -> str:
    """``2024-05-01T08:30:00Z`` from an aware datetime (converted to UTC)."""
    if not isinstance(value, datetime):
        raise InvalidRequest(f"{field} must be a datetime, got {type(value).__name__}", field=field)
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRequest(f"{field} must be timezone-aware", field=field)
    utc = value.astimezone(timezone.utc)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}"
    return text + "Z"


def received_filter(received_after: datetime | None = None, received_before: datetime | None = None) -> str | None:
    """``receivedDateTime ge A and receivedDateTime lt B`` (either side optional).

    ``received_after`` is inclusive, ``received_before`` exclusive, so adjacent windows neither
    overlap nor leave gaps.
    """
    terms = []
    if received_after is not None:
        terms.append(f"receivedDateTime ge {odata_datetime(received_after, 'received_after')}")
    if received_before is not None:
        terms.append(f"receivedDateTime lt {odata_datetime(received_before, 'received_before')}")
    if received_after is not None and received_before is not None and received_after >= received_before:
        raise InvalidRequest("received_after must be earlier than received_before", field="received_after")
    return " and ".join(terms) or None


def select_clause(fields: Iterable[str] | str | None) -> str | None:
    """Comma-separated ``$select`` list; each entry must be a plain property name."""
    if fields is None:
        return None
    items = fields.split(",") if isinstance(fields, str) else list(fields)
    cleaned = []
    for item in items:
        if not isinstance(item, str) or not _FIELD.match(item.strip()):
            raise InvalidRequest(f"invalid $select field {item!r}", field="select")
        if item.strip() not in cleaned:
            cleaned.append(item.strip())
    if not cleaned:
        raise InvalidRequest("$select needs at least one field", field="select")
    return ",".join(cleaned)


def orderby_clause(value: str | None) -> str | None:
    """``$orderby`` such as ``receivedDateTime desc``; property names and asc/desc only."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest("orderby must be a string", field="orderby")
    terms = [t.strip() for t in value.split(",")]
    if not terms or not all(_ORDER_TERM.match(t) for t in terms):
        raise InvalidRequest(f"invalid $orderby {value!r}", field="orderby")
    return ",".join(terms)


def top_value(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOP:
        raise InvalidRequest(f"top must be an integer between 1 and {MAX_TOP}, got {value!r}", field="top")
    return value


def body_type_value(value: object) -> str:
    if value not in BODY_TYPES:
        raise InvalidRequest(f"body_type must be one of {', '.join(BODY_TYPES)}, got {value!r}", field="body_type")
    return str(value)


def body_preference(body_type: str) -> str:
    """``Prefer`` value choosing the body format (graph-mail.md "Listing and paging")."""
    return f'outlook.body-content-type="{body_type_value(body_type)}"'


def max_page_size_preference(page_size: int) -> str:
    """``Prefer: odata.maxpagesize=N``: the page size of delta queries (graph-mail.md "Delta")."""
    return f"odata.maxpagesize={top_value(page_size)}"


def segment(value: object, field: str) -> str:
    """A percent-encoded path segment (ids are case-sensitive and may hold ``/``, ``+``, ``=``)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{field} must be a non-empty string", field=field)
    if any(ord(ch) < 32 for ch in value):
        raise InvalidRequest(f"{field} contains control characters", field=field)
    return quote(value, safe="@")


def user_path(upn: str) -> str:
    return f"/users/{segment(upn, 'mailbox')}"
