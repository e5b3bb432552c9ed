"""Function keys, as Azure enforces them when `--require-keys` is given.

FUNCTION routes accept the function key or the master key; ADMIN routes and the Durable
webhooks only the master key; ANONYMOUS routes none. A key is read from the `x-functions-key`
header or the `code` query parameter. Keys come from DEVHOST_FUNCTION_KEY / DEVHOST_MASTER_KEY,
or are generated at start and printed once.
"""
from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class Keys:
    required: bool
    function_key: str | None
    master_key: str | None

    @classmethod
    def from_settings(cls, required: bool, environ: Mapping[str, str]) -> "Keys":
        if not required:
            return cls(False, None, None)
        return cls(True,
                   environ.get("DEVHOST_FUNCTION_KEY") or secrets.token_urlsafe(32),
                   environ.get("DEVHOST_MASTER_KEY") or secrets.token_urlsafe(32))

    @staticmethod
    def _same(given: str | None, expected: str | None) -> bool:
        return bool(given and expected) and hmac.compare_digest(given, expected)

    def allows(self, level: str, given: str | None) -> bool:
        level = (level or "function").lower()
        if not self.required or level == "anonymous":
            return True
        if self._same(given, self.master_key):
            return True
        return level == "function" and self._same(given, self.function_key)


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    return headers.get("x-functions-key") or query.get("code")
