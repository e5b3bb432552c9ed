"""Opaque paging cursors for list routes: base64url JSON of a small position object.

Callers treat them as opaque; anything that does not decode to the expected shape is a 400,
never a 500.
"""
from __future__ import annotations

import base64
import json
from typing import Any, Callable

from mailextract.errors import InvalidRequest

MAX_CURSOR_CHARS = 4096


def encode(position: dict[str, Any] | None) -> str | None:
    if position is None:
        return None
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(cursor: str | None, valid: Callable[[Any], bool]) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError
        position = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
        if not isinstance(position, dict) or not valid(position):
            raise ValueError
        return position
    except (ValueError, RecursionError):
        raise InvalidRequest("cursor is not a cursor this service returned", field="cursor") from None
