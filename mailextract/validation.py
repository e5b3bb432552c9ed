"""Validators shared by every request body and query: addresses, closed objects, distinct lists.

Each raises InvalidRequest naming the field, so bad input becomes a 400 before anything is stored.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any

from mailextract.errors import InvalidRequest

# A pragmatic address check: one @, no spaces, a dot in the domain (what Graph accepts as a UPN).
_ADDRESS = re.compile(r"^[^@\s\"'(),:;<>\[\]\\]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]{2,}$")
MAX_ADDRESS = 320


def validate_address(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{field} is required and must be an email address", field=field)
    value = value.strip()
    if len(value) > MAX_ADDRESS or not _ADDRESS.match(value):
        raise InvalidRequest(f"{field} is not an email address: {value[:100]!r}", field=field)
    return value


def known_fields(raw: Any, what: str, allowed: tuple[str, ...], label: str) -> dict[str, Any]:
    """`raw` must be an object whose keys are all in `allowed` (refused: "unknown {label}: ...")."""
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{what} must be an object", field=what)
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise InvalidRequest(f"unknown {label}: {', '.join(unknown)}; known: {', '.join(allowed)}", field=what)
    return raw


def distinct(values: list[str], what: str) -> list[str]:
    """Refuse values listed more than once (ignoring case), naming them."""
    counts = Counter(v.lower() for v in values)
    duplicates = sorted({v for v in values if counts[v.lower()] > 1})
    if duplicates:
        raise InvalidRequest(f"{what} lists these more than once: {', '.join(duplicates)}", field=what)
    return values


def address_list(raw: Any, what: str, limit: int, per: str) -> list[str]:
    """A non-empty list of at most `limit` distinct email addresses."""
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest(f"{what} must be a non-empty list of email addresses", field=what)
    if len(raw) > limit:
        raise InvalidRequest(f"{what} has {len(raw)} entries; at most {limit} per {per}", field=what)
    return distinct([validate_address(u, f"{what}[{i}]") for i, u in enumerate(raw)], what)
