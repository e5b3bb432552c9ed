"""Validation of the extraction API's request bodies and query parameters.

Everything a caller sends is checked here, before anything is stored, so bad input gets a
clear 400 naming the field and nothing is half-written.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailextract.errors import InvalidRequest
from mailextract.jobs import ExtractionOptions
from mailextract.validation import address_list, validate_address

MAX_BATCH_USERS = 1000
MAX_PAGE_LIMIT = 1000
DEFAULT_PAGE_LIMIT = 100
_BODY_FIELDS = {"user_upn", "config", "options"}
_BATCH_FIELDS = {"user_upns", "config", "options"}


def _object(body: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(unknown)}; expected {', '.join(sorted(allowed))}")
    config = body.get("config")
    if config is not None and not isinstance(config, dict):
        raise InvalidRequest("config must be an object", field="config")
    return body


@dataclass(frozen=True)
class StartRequest:
    user_upn: str
    config: dict[str, Any] | None
    options: ExtractionOptions

    @classmethod
    def parse(cls, body: Any) -> "StartRequest":
        body = _object(body, _BODY_FIELDS)
        return cls(validate_address(body.get("user_upn"), "user_upn"), body.get("config"),
                   ExtractionOptions.parse(body.get("options")))


@dataclass(frozen=True)
class BatchStartRequest:
    user_upns: tuple[str, ...]
    config: dict[str, Any] | None
    options: ExtractionOptions

    @classmethod
    def parse(cls, body: Any) -> "BatchStartRequest":
        body = _object(body, _BATCH_FIELDS)
        upns = address_list(body.get("user_upns"), "user_upns", MAX_BATCH_USERS, "batch")
        return cls(tuple(upns), body.get("config"), ExtractionOptions.parse(body.get("options")))


def page_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_PAGE_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"limit must be an integer from 1 to {MAX_PAGE_LIMIT}", field="limit") from None
    if not 1 <= value <= MAX_PAGE_LIMIT:
        raise InvalidRequest(f"limit must be an integer from 1 to {MAX_PAGE_LIMIT}", field="limit")
    return value
