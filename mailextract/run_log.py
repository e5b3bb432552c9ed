"""Structured log lines of run state changes: one JSON object per line after the event name,
with connection/batch id, mailbox, counts and durations. Never mail content, never secrets."""
from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger("mailextract.runs")


def log_event(event: str, **fields: Any) -> None:
    log.info("%s %s", event, json.dumps(fields, sort_keys=True, default=str))
