"""The one place where settings (app settings / environment variables) are read.

Why: names, defaults and validation live together so a bad value fails with a typed
``SettingsError`` naming the setting, instead of surfacing later as an odd Graph or storage error.
``Settings.from_mapping`` takes any mapping (tests pass a dict); ``get_settings()`` reads
``os.environ`` once per process, lazily (never at import time: the Functions worker imports the
app to index it).

To add a setting: declare one more field with ``setting("NAME", parser, default)`` below. The
parser receives the stripped, non-empty raw string and returns the value or raises
``ValueError`` with a short reason; unset or blank values take the default.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from mailextract.errors import SettingsError

# --------------------------------------------------------------------------------------------
# Parsers: raw string -> value, ValueError("reason") when invalid.
# --------------------------------------------------------------------------------------------


def text(raw: str) -> str:
    return raw


def https_root_url(raw: str) -> str:
    """An https URL with a host and no path/query (trailing slash stripped).

    Endpoints are settings because of national clouds (reference/graph-mail.md "National
    clouds"); a path such as ``/v1.0`` would corrupt the token scope ``{endpoint}/.default``.
    """
    value = raw.rstrip("/")
    parts = urlsplit(value)
    if parts.scheme.lower() != "https":
        raise ValueError(f"must be an https URL, got {raw!r}")
    if not parts.hostname:
        raise ValueError(f"has no host: {raw!r}")
    if parts.path or parts.query or parts.fragment:
        raise ValueError(f"must be a root URL without path or query (like https://host[:port]), got {raw!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"has an invalid port: {raw!r}") from exc
    return value


def int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"must be an integer, got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")
        return value

    return parse


def seconds_between(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"must be a number of seconds, got {raw!r}") from None
        if not (low <= value <= high):  # also rejects NaN
            raise ValueError(f"must be between {low:g} and {high:g} seconds, got {raw}")
        return value

    return parse


def fernet_key(raw: str) -> str:
    """A Fernet key: url-safe base64 of 32 bytes (``Fernet.generate_key()``)."""
    import base64
    import binascii

    try:
        decoded = base64.urlsafe_b64decode(raw.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise ValueError("must be a Fernet key (url-safe base64 of 32 bytes)") from None
    if len(decoded) != 32:
        raise ValueError("must be a Fernet key (url-safe base64 of 32 bytes)")
    return raw


def setting(name: str, parse: Callable[[str], Any], default: Any = None, *, secret: bool = False) -> Any:
    """Declare a settings field read from ``name``. Secret fields are left out of ``repr``."""
    return field(default=default, repr=not secret, metadata={"env": name, "parse": parse})


# --------------------------------------------------------------------------------------------


DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_GRAPH_ENDPOINT = "https://graph.microsoft.com"


@dataclass(frozen=True)
class Settings:
    """Validated settings. Build with ``Settings.from_mapping(...)`` or ``get_settings()``."""

    # Credentials of the default app registration (a request may bring its own).
    tenant_id: str | None = setting("TENANT_ID", text)
    outlook_client_id: str | None = setting("OUTLOOK_CLIENT_ID", text)
    outlook_client_secret: str | None = setting("OUTLOOK_CLIENT_SECRET", text, secret=True)
    # Clouds: login and Graph hosts (graphsim locally).
    azure_authority_host: str = setting("AZURE_AUTHORITY_HOST", https_root_url, DEFAULT_AUTHORITY_HOST)
    graph_api_endpoint: str = setting("GRAPH_API_ENDPOINT", https_root_url, DEFAULT_GRAPH_ENDPOINT)
    # Graph access: Outlook allows 4 concurrent requests per app and mailbox (graph-mail.md "Limits").
    graph_max_inflight_per_mailbox: int = setting("GRAPH_MAX_INFLIGHT_PER_MAILBOX", int_between(1, 16), 4)
    graph_app_requests_per_10_seconds: int = setting("GRAPH_APP_REQUESTS_PER_10_SECONDS",
                                                     int_between(1, 130_000), 130_000)
    graph_max_total_wait_seconds: float = setting("GRAPH_MAX_TOTAL_WAIT_SECONDS", seconds_between(0, 3600), 300.0)
    # A few hundred with $select: big pages with bodies can time out (graph-mail.md "Listing").
    graph_page_size: int = setting("GRAPH_PAGE_SIZE", int_between(1, 1000), 100)
    # Read timeout of one Graph HTTP request (large attachments can take 30+ s).
    graph_request_timeout_seconds: float = setting("GRAPH_REQUEST_TIMEOUT_SECONDS", seconds_between(1, 600), 120.0)
    # Storage (Azurite locally); used by the storage layer.
    azure_web_jobs_storage: str | None = setting("AzureWebJobsStorage", text, secret=True)
    # Key encrypting credentials that requests bring (credential vault); unset = such requests refused.
    credential_encryption_key: str | None = setting("CREDENTIAL_ENCRYPTION_KEY", fernet_key, secret=True)
    # How many mailboxes of one batch are extracted at once. Each run of a batch runs at most 4 lanes
    # at once (Graph's requests per mailbox), so 8 mailboxes could fill host.json's 32 activities
    # only if each always had 4; a run listing its folders or finishing keeps one busy and a small
    # mailbox's last folders fewer than 4, so about 3 x that keeps the activities busy
    # (bench/README.md measured 10, 16, 24 and 32 with the earlier steps of 3 pages).
    extraction_batch_parallelism: int = setting("EXTRACTION_BATCH_PARALLELISM", int_between(1, 200), 24)

    @classmethod
    def from_mapping(cls, values: Mapping[str, str] | None = None) -> "Settings":
        """Parse and validate settings from ``values`` (default ``os.environ``)."""
        source = os.environ if values is None else values
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = f.metadata.get("env")
            if name is None:
                continue
            raw = source.get(name)
            if raw is None or not str(raw).strip():
                continue  # unset or blank: the default
            try:
                kwargs[f.name] = f.metadata["parse"](str(raw).strip())
            except ValueError as exc:
                raise SettingsError(name, str(exc)) from None
        return cls(**kwargs)

    @classmethod
    def setting_name(cls, field_name: str) -> str:
        """The setting (environment variable) name behind a field, e.g. ``tenant_id`` -> ``TENANT_ID``."""
        for f in dataclasses.fields(cls):
            if f.name == field_name:
                return f.metadata["env"]
        raise KeyError(field_name)

    # Derived values ---------------------------------------------------------------------

    @property
    def graph_base_url(self) -> str:
        """Root of the v1.0 API, e.g. ``https://graph.microsoft.com/v1.0``."""
        return f"{self.graph_api_endpoint}/v1.0"

    @property
    def graph_scope(self) -> str:
        """Client-credentials scope of this cloud's Graph (graph-mail.md "National clouds")."""
        return f"{self.graph_api_endpoint}/.default"


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process from ``os.environ``, read on first use and cached."""
    return Settings.from_mapping(os.environ)


def reset_settings_cache() -> None:
    """Forget the cached process settings (tests that change the environment)."""
    get_settings.cache_clear()
