"""Table keys and blob names from user-supplied ids (storage.md: PartitionKey/RowKey forbid
`/ \\ # ?` and control characters, at most 1024 characters).

Connection ids are validated, not encoded: they are the caller's handle and appear in URLs.
Graph message and attachment ids are encoded reversibly (percent-encoding of the forbidden
characters and `%`), so any id Graph returns is a valid key and blob name segment.
"""
from __future__ import annotations

import re

from mailextract.errors import InvalidRequest

MAX_CONNECTION_ID = 256
RESERVED_PREFIX = "batch_"
_FORBIDDEN = re.compile(r"[/\\#?%\x00-\x1f\x7f-\x9f]")
_CONNECTION_FORBIDDEN = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


def validate_connection_id(value: object, *, allow_reserved: bool = False) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("connection_id must be a non-empty string")
    if len(value) > MAX_CONNECTION_ID:
        raise InvalidRequest(f"connection_id must be at most {MAX_CONNECTION_ID} characters")
    if _CONNECTION_FORBIDDEN.search(value):
        raise InvalidRequest("connection_id must not contain '/', '\\', '#', '?' or control characters")
    if value != value.strip():
        raise InvalidRequest("connection_id must not start or end with spaces")
    if not allow_reserved and value.startswith(RESERVED_PREFIX):
        raise InvalidRequest(f"connection_id must not start with '{RESERVED_PREFIX}' (reserved for batches)")
    return value


def encode(value: str) -> str:
    return _FORBIDDEN.sub(lambda m: "%%%02X" % ord(m.group()), value)


def decode(value: str) -> str:
    return re.sub(r"%([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), value)


def odata_literal(value: str) -> str:
    """A string literal for an OData filter: single quotes doubled, never pasted raw."""
    return "'" + value.replace("'", "''") + "'"
