"""Validation of connection bodies (POST creates, PUT replaces), before anything is stored.

Every field a caller sends is checked here so bad input gets a 400 naming the field and neither
the vault nor the Connections table is touched. Unknown fields are refused, including unknown
`config` fields: a misspelt `client_secret` would otherwise fall back silently to the app's own
settings credentials.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from mailextract.connections.schedule import parse_schedule
from mailextract.errors import InvalidRequest
from mailextract.validation import address_list, distinct, known_fields
from mailextract.jobs import BODY_FORMATS
from mailextract.storage.keys import validate_connection_id

MAX_NAME = 200
MAX_MAILBOXES = 100
MAX_FOLDERS = 100
ID_PREFIX = "conn-"
_FIELDS = ("config", "enabled", "folders", "mailboxes", "name", "options", "schedule")
CONFIG_FIELDS = ("outlook_client_certificate_pem", "outlook_client_certificate_thumbprint", "outlook_client_id",
                 "outlook_client_secret", "tenant_id")
OPTION_NAMES = ("body_format", "include_attachments", "purge_deleted")
DEFAULT_OPTIONS = {"body_format": "html", "include_attachments": False, "purge_deleted": False}


def new_connection_id() -> str:
    return ID_PREFIX + uuid.uuid4().hex[:12]


def validate_id(value: Any) -> str:
    """A caller's connection id (the `id` field): validate_connection_id's rules, named `id`."""
    try:
        return validate_connection_id(value)
    except InvalidRequest as exc:
        raise InvalidRequest("id" + exc.message.removeprefix("connection_id"), field="id") from None


def parse_mailboxes(raw: Any) -> list[str]:
    return address_list(raw, "mailboxes", MAX_MAILBOXES, "connection")


def parse_folders(raw: Any) -> list[str] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw or not all(isinstance(f, str) and f.strip() for f in raw):
        raise InvalidRequest("folders must be a non-empty list of folder names, or null for every folder",
                             field="folders")
    if len(raw) > MAX_FOLDERS:
        raise InvalidRequest(f"folders has {len(raw)} entries; at most {MAX_FOLDERS}", field="folders")
    return distinct([f.strip() for f in raw], "folders")


def parse_options(raw: Any) -> dict[str, Any]:
    if raw is None:
        return dict(DEFAULT_OPTIONS)
    options = {**DEFAULT_OPTIONS, **known_fields(raw, "options", OPTION_NAMES, "option(s)")}
    if options["body_format"] not in BODY_FORMATS:
        raise InvalidRequest("options.body_format must be 'html' or 'text'", field="options.body_format")
    for name in ("include_attachments", "purge_deleted"):
        if not isinstance(options[name], bool):
            raise InvalidRequest(f"options.{name} must be true or false", field=f"options.{name}")
    return options


def parse_name(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw.strip() or len(raw.strip()) > MAX_NAME:
        raise InvalidRequest(f"name must be a non-blank string of at most {MAX_NAME} characters, or null",
                             field="name")
    return raw.strip()


def parse_config(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    known_fields(raw, "config", CONFIG_FIELDS, "config field(s)")
    for name, value in raw.items():
        if value is not None and not isinstance(value, str):
            raise InvalidRequest(f"config.{name} must be a string", field=f"config.{name}")
    return raw


@dataclass(frozen=True)
class ConnectionRequest:
    """A validated POST (with `id`) or PUT (without) body. `config` is None when omitted."""

    id: str | None
    name: str | None
    mailboxes: list[str]
    folders: list[str] | None
    schedule: str
    interval_seconds: int
    options: dict[str, Any]
    enabled: bool
    config: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, body: Any, *, with_id: bool) -> "ConnectionRequest":
        """`with_id`: a create body, whose optional `id` is validated (generated when absent)."""
        if not isinstance(body, dict):
            raise InvalidRequest("the request body must be a JSON object")
        allowed = sorted((*_FIELDS, "id") if with_id else _FIELDS)
        unknown = sorted(set(body) - set(allowed))
        if unknown:
            raise InvalidRequest(f"unknown field(s): {', '.join(unknown)}; expected {', '.join(allowed)}")
        connection_id = None
        if with_id:
            connection_id = validate_id(body["id"]) if body.get("id") is not None else new_connection_id()
        name = parse_name(body.get("name"))
        mailboxes = parse_mailboxes(body.get("mailboxes"))
        folders = parse_folders(body.get("folders"))
        interval = parse_schedule(body.get("schedule"))
        options = parse_options(body.get("options"))
        enabled = body.get("enabled", True)
        if not isinstance(enabled, bool):
            raise InvalidRequest("enabled must be true or false", field="enabled")
        config = parse_config(body.get("config"))
        return cls(connection_id, name, mailboxes, folders, body["schedule"].strip(), interval, options, enabled,
                   config)
