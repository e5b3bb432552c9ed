"""OData query options, `Prefer` preferences and opaque paging tokens.

Why: the extraction pages with `$top`/`$select`/`$filter`/`$orderby` and follows `@odata.nextLink`
and `@odata.deltaLink` as opaque URLs. graphsim supports the subset mail listing needs and
rejects the rest with Graph's 400 error codes, so a client that drifts outside that subset
finds out in tests rather than in production. Paging tokens are stateless (base64 of a small
JSON document with a check digest) so a nextLink still works in another process with the same seed.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Mapping

from . import shapes

MAX_TOP = 1000


class QueryError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class Bound:
    value: float
    inclusive: bool


@dataclass
class ListQuery:
    select: list[str] | None = None
    top: int | None = None
    skip: int = 0
    lower: Bound | None = None
    upper: Bound | None = None
    descending: bool = True
    orderby_given: bool = False
    skiptoken: str | None = None
    deltatoken: str | None = None
    count: bool = False
    change_types: frozenset[str] | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class Preferences:
    body_type: str = "html"
    immutable_ids: bool = False
    max_page_size: int | None = None
    applied: list[str] = field(default_factory=list)


KNOWN_OPTIONS = {"$select", "$top", "$skip", "$filter", "$orderby", "$skiptoken", "$deltatoken", "$count",
                 "$expand", "$search", "$format", "changetype"}


def parse_datetime(text: str) -> float:
    text = text.strip().strip("'")
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            value = datetime.fromisoformat(text + "T00:00:00+00:00")
        else:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise QueryError("BadRequest", f"The DateTimeOffset text '{text}' should be in format "
                         "'yyyy-mm-ddThh:mm:ss('.'s+)?(zzzzzz)?' and each field value is within valid range.")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


_CLAUSE = re.compile(r"^\(?\s*receiveddatetime\s+(ge|gt|le|lt|eq)\s+(\S+?)\s*\)?$", re.IGNORECASE)


def parse_filter(text: str, q: ListQuery) -> None:
    clauses = re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE)
    for clause in clauses:
        m = _CLAUSE.match(clause.strip())
        if not m:
            if re.search(r"\bor\b|\bnot\b|\w+\(", clause, re.IGNORECASE) or not re.match(r"^\(?\s*\w+\s+\w+\s+", clause):
                raise QueryError("ErrorInvalidUrlQuery", f"graphsim supports only receivedDateTime ge|gt|le|lt|eq "
                                 f"<date> clauses combined with 'and' in $filter; got '{clause}'.")
            prop = re.match(r"^\(?\s*(\w+)", clause).group(1)
            raise QueryError("ErrorInvalidUrlQuery", f"The property '{prop}' is not supported in $filter by graphsim "
                             "(only receivedDateTime is).")
        op, value = m.group(1).lower(), parse_datetime(m.group(2))
        if op in ("ge", "gt", "eq"):
            bound = Bound(value, op != "gt")
            if q.lower is None or bound.value > q.lower.value or (bound.value == q.lower.value and not bound.inclusive):
                q.lower = bound
        if op in ("le", "lt", "eq"):
            bound = Bound(value, op != "lt")
            if q.upper is None or bound.value < q.upper.value or (bound.value == q.upper.value and not bound.inclusive):
                q.upper = bound


def parse_list_query(params: Mapping[str, str], *, default_top: int | None = 10, for_messages: bool = True,
                     delta: bool = False) -> ListQuery:
    q = ListQuery(top=default_top)
    for raw_name, value in params.items():
        name = raw_name.lower()
        if not name.startswith("$") and name != "changetype":
            q.extra[raw_name] = value
            continue
        if name not in KNOWN_OPTIONS:
            raise QueryError("BadRequest", f"Query option '{raw_name}' is not allowed. Make sure that the option is "
                             "supported and that its spelling is correct.")
        if name == "$select":
            if not for_messages:
                continue
            picked = []
            for part in value.split(","):
                part = part.strip()
                if not part:
                    continue
                canonical = shapes.SELECTABLE.get(part.lower())
                if canonical is None:
                    raise QueryError("BadRequest", f"Could not find a property named '{part}' on type "
                                     "'microsoft.graph.message'.")
                picked.append(canonical)
            q.select = picked
        elif name == "$top":
            if not re.fullmatch(r"\d+", value.strip()):
                raise QueryError("BadRequest", f"Invalid $top value '{value}': it must be an integer.")
            top = int(value)
            if top < 1 or top > MAX_TOP:
                raise QueryError("ErrorInvalidUrlQuery", f"The value of $top must be between 1 and {MAX_TOP}.")
            q.top = top
        elif name == "$skip":
            if not re.fullmatch(r"\d+", value.strip()):
                raise QueryError("BadRequest", f"Invalid $skip value '{value}': it must be a non-negative integer.")
            q.skip = int(value)
        elif name == "$filter":
            if not for_messages:
                raise QueryError("ErrorInvalidUrlQuery", "graphsim does not support $filter on mail folders.")
            parse_filter(value, q)
            if delta and q.upper is not None:
                raise QueryError("ErrorInvalidUrlQuery", "Delta supports only 'receivedDateTime ge|gt' in $filter.")
        elif name == "$orderby":
            if not for_messages:
                raise QueryError("ErrorInvalidUrlQuery", "graphsim does not support $orderby on mail folders.")
            m = re.fullmatch(r"\s*receiveddatetime(?:\s+(asc|desc))?\s*", value, re.IGNORECASE)
            if not m:
                raise QueryError("ErrorInvalidUrlQuery", f"graphsim supports $orderby only on receivedDateTime; "
                                 f"got '{value}'.")
            q.descending = (m.group(1) or "asc").lower() == "desc"
            q.orderby_given = True
            if delta and not q.descending:
                raise QueryError("ErrorInvalidUrlQuery", "Delta supports only '$orderby=receivedDateTime desc'.")
        elif name == "$skiptoken":
            q.skiptoken = value
        elif name == "$deltatoken":
            q.deltatoken = value
        elif name == "$count":
            q.count = value.strip().lower() == "true"
        elif name == "changetype":
            kinds = frozenset(v.strip().lower() for v in value.split(",") if v.strip())
            if not delta or not kinds <= {"created", "updated", "deleted"}:
                raise QueryError("BadRequest", f"Invalid changeType '{value}'.")
            q.change_types = kinds
        elif name in ("$expand", "$search", "$format"):
            raise QueryError("ErrorInvalidUrlQuery", f"graphsim does not support the query option '{raw_name}'.")
    return q


def _split_prefer(header: str) -> list[str]:
    parts, current, quoted = [], [], False
    for ch in header:
        if ch == '"':
            quoted = not quoted
        if ch in ",;" and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def parse_prefer(values: list[str]) -> Preferences:
    """Parse one or several Prefer headers (preferences may share a header, comma-separated)."""
    prefs = Preferences()
    for header in values:
        for item in _split_prefer(header):
            name, _, value = item.partition("=")
            name, value = name.strip().lower(), value.strip().strip('"').strip()
            if name == "outlook.body-content-type" and value.lower() in ("text", "html"):
                prefs.body_type = value.lower()
                prefs.applied.append(f'outlook.body-content-type="{prefs.body_type}"')
            elif name == "idtype":
                prefs.immutable_ids = value.lower() == "immutableid"
                prefs.applied.append(f'IdType="{"ImmutableId" if prefs.immutable_ids else "RestId"}"')
            elif name == "odata.maxpagesize" and value.isdigit() and int(value) > 0:
                prefs.max_page_size = int(value)  # echoed by the routes that honour it
    return prefs


# ------------------------------------------------------------------------------ opaque tokens

def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=6, person=b"graphsim-tok").digest()


def encode_token(state: dict) -> str:
    data = json.dumps(state, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(_digest(data) + data).decode("ascii").rstrip("=")


def decode_token(token: str) -> dict | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, UnicodeEncodeError):
        return None
    digest, data = raw[:6], raw[6:]
    if len(raw) < 8 or _digest(data) != digest:
        return None
    try:
        state = json.loads(data)
    except ValueError:
        return None
    return state if isinstance(state, dict) else None
