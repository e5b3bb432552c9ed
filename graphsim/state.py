"""Everything one simulator knows, without any HTTP: directory, tokens, mailboxes, faults, stats.

Why: the HTTP routes (app.py), the admin API (admin.py) and the Python API (testing.py) all act on
the same state; keeping it in one plain object lets each of them stay a thin adapter.
"""
from __future__ import annotations

import re
import threading
import uuid

from .entra import Directory, TokenIssuer
from .faults import FaultConfig, FaultShaper, Stats
from .mailbox import Mailbox

_NS = uuid.UUID("0d7c1c2a-5b7e-4f55-9a43-2f1f0f7d1b11")
DEMO_MAILBOXES = {"alice@contoso.com": 500, "bob@contoso.com": 50, "chloe.dubois@contoso.com": 2000}


def parse_mailbox_spec(spec: str | dict | None) -> dict[str, int]:
    """'alice@contoso.com=500,bob@contoso.com=20k' -> {'alice@contoso.com': 500, 'bob@contoso.com': 20000}."""
    if spec is None:
        return dict(DEMO_MAILBOXES)
    if isinstance(spec, dict):
        return {str(k): int(v) for k, v in spec.items()}
    out: dict[str, int] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        upn, _, count = part.partition("=")
        m = re.fullmatch(r"\s*(\d+)\s*([kKmM]?)\s*", count or "100")
        if "@" not in upn or not m:
            raise ValueError(f"bad mailbox spec {part!r}: expected upn=count, e.g. alice@contoso.com=500")
        out[upn.strip()] = int(m.group(1)) * {"": 1, "k": 1000, "m": 1_000_000}[m.group(2).lower()]
    return out


def default_ids(seed: int) -> tuple[str, str]:
    return str(uuid.uuid5(_NS, f"tenant|{seed}")), str(uuid.uuid5(_NS, f"client|{seed}"))


class SimState:
    def __init__(self, seed: int = 0, tenant_id: str | None = None, *, mailbox_options: dict | None = None,
                 faults: FaultConfig | None = None) -> None:
        self.seed = seed
        default_tenant, _ = default_ids(seed)
        self.tenant_id = (tenant_id or default_tenant).lower()
        self.mailbox_options = dict(mailbox_options or {})
        self.directory = Directory()
        self.directory.add_tenant(self.tenant_id)
        self.tokens = TokenIssuer()
        self.stats = Stats()
        self.faults = FaultShaper(seed, faults or FaultConfig(), self.stats)
        self._lock = threading.Lock()
        self._mailboxes: dict[tuple[str, str], Mailbox] = {}
        self._by_user_id: dict[tuple[str, str], Mailbox] = {}
        self._users_without_mailbox: set[tuple[str, str]] = set()

    def add_mailbox(self, upn: str, count: int, tenant_id: str | None = None, **options) -> Mailbox:
        tenant = (tenant_id or self.tenant_id).lower()
        merged = {**self.mailbox_options, **options}
        mbx = Mailbox(upn, count, self.seed, tenant, **merged)
        self.directory.add_tenant(tenant, {upn.split("@", 1)[1]})
        with self._lock:
            self._mailboxes[(tenant, upn.lower())] = mbx
            self._by_user_id[(tenant, mbx.user_id)] = mbx
        return mbx

    def add_user_without_mailbox(self, upn: str, tenant_id: str | None = None) -> None:
        """A directory user whose mailbox is not on Exchange Online (Graph: MailboxNotEnabledForRESTAPI)."""
        tenant = (tenant_id or self.tenant_id).lower()
        self.directory.add_tenant(tenant, {upn.split("@", 1)[1]})
        with self._lock:
            self._users_without_mailbox.add((tenant, upn.lower()))

    def has_user_without_mailbox(self, tenant_id: str, user: str) -> bool:
        with self._lock:
            return (tenant_id.lower(), user.lower()) in self._users_without_mailbox

    def find_mailbox(self, tenant_id: str, user: str) -> Mailbox | None:
        key = (tenant_id.lower(), user.lower())
        with self._lock:
            return self._mailboxes.get(key) or self._by_user_id.get(key)

    def mailbox(self, upn: str) -> Mailbox:
        with self._lock:
            for (tenant, name), mbx in self._mailboxes.items():
                if name == upn.lower() or mbx.user_id == upn.lower():
                    return mbx
        raise KeyError(f"no mailbox {upn!r}")

    def mailboxes(self) -> list[Mailbox]:
        with self._lock:
            return list(self._mailboxes.values())

    def expire_delta_tokens(self, upn: str | None = None) -> None:
        for mbx in ([self.mailbox(upn)] if upn else self.mailboxes()):
            mbx.expire_delta_tokens()
