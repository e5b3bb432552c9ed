"""Extraction runs: their statuses, the transitions users may ask for, and their options.

Status names are the ones users of the original service know: pending, in_progress, pausing,
paused, completed, cancelled, failed. Pause is accepted while a run is pending or in progress;
continue while it is pausing or paused; cancel while it is active; a finished run accepts none.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from mailextract.errors import InvalidRequest, JobConflict
from mailextract.validation import known_fields

PENDING, IN_PROGRESS, PAUSING, PAUSED = "pending", "in_progress", "pausing", "paused"
COMPLETED, CANCELLED, FAILED = "completed", "cancelled", "failed"
ACTIVE = (PENDING, IN_PROGRESS, PAUSING, PAUSED)
PAUSE_STATUSES = (PAUSING, PAUSED)  # asked to pause, or paused
FINISHED = (COMPLETED, CANCELLED, FAILED)

ALLOWED_FROM = {
    "pause": (PENDING, IN_PROGRESS),
    "continue": PAUSE_STATUSES,
    "cancel": ACTIVE,
}


def require_transition(action: str, status: str, what: str) -> None:
    """Raise JobConflict (409) when `action` is not allowed for a run in `status`."""
    if status in ALLOWED_FROM[action]:
        return
    if status in FINISHED:
        raise JobConflict(f"{what} is {status}; a {status} run cannot be {_past(action)}", status=status)
    raise JobConflict(f"{what} is {status}; only a run that is {' or '.join(ALLOWED_FROM[action])} "
                      f"can be {_past(action)}", status=status)


def _past(action: str) -> str:
    return {"pause": "paused", "continue": "continued", "cancel": "cancelled"}[action]


def utcnow_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


BODY_FORMATS = ("html", "text")
OPTION_NAMES = ("folders", "received_after", "received_before", "include_attachments", "body_format")


def parse_time(name: str, value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"options.{name} must be an ISO 8601 date or date-time string", field=f"options.{name}")
    try:
        parsed = datetime.fromisoformat(re.sub(r"[zZ]$", "+00:00", value.strip()))
    except ValueError:
        raise InvalidRequest(f"options.{name} is not an ISO 8601 date or date-time: {value!r}",
                             field=f"options.{name}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class ExtractionOptions:
    """What to extract. `folders` None means every folder; a named folder includes its subfolders.

    Folders are matched case-insensitively by path (`Inbox/Projects`), display name, well-known
    name (`inbox`, `sentitems`, `deleteditems`, `drafts`, `junkemail`, `archive`) or id.
    The date window is half-open: `received_after` inclusive, `received_before` exclusive, so
    adjacent windows neither overlap nor leave a gap. Dates without a time zone are UTC.
    """

    folders: tuple[str, ...] | None = None
    received_after: datetime | None = None
    received_before: datetime | None = None
    include_attachments: bool = False
    body_format: str = "html"

    @classmethod
    def parse(cls, raw: Any) -> "ExtractionOptions":
        if raw is None:
            return cls()
        known_fields(raw, "options", OPTION_NAMES, "option(s)")
        folders = raw.get("folders")
        if folders is not None:
            if (not isinstance(folders, list) or not folders
                    or not all(isinstance(f, str) and f.strip() for f in folders)):
                raise InvalidRequest("options.folders must be a non-empty list of folder names",
                                     field="options.folders")
            folders = tuple(f.strip() for f in folders)
        after = parse_time("received_after", raw.get("received_after"))
        before = parse_time("received_before", raw.get("received_before"))
        if after and before and after >= before:
            raise InvalidRequest("options.received_after must be earlier than options.received_before",
                                 field="options.received_after")
        attachments = raw.get("include_attachments", False)
        if not isinstance(attachments, bool):
            raise InvalidRequest("options.include_attachments must be true or false",
                                 field="options.include_attachments")
        body_format = raw.get("body_format", "html")
        if body_format not in BODY_FORMATS:
            raise InvalidRequest("options.body_format must be 'html' or 'text'", field="options.body_format")
        return cls(folders, after, before, attachments, body_format)

    def to_json(self) -> dict[str, Any]:
        return {"folders": list(self.folders) if self.folders else None,
                "received_after": self.received_after.isoformat() if self.received_after else None,
                "received_before": self.received_before.isoformat() if self.received_before else None,
                "include_attachments": self.include_attachments, "body_format": self.body_format}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ExtractionOptions":
        return cls.parse(data)
