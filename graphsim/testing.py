"""GraphSim: start a simulator (in-process, on a free port) and drive it from Python.

Why: this is the interface other code is written against, in fixtures, integration and e2e tests,
benchmarks and the CLI:

    with GraphSim.start(mailboxes={"alice@contoso.com": 500}, seed=7) as sim:
        settings = {"AZURE_AUTHORITY_HOST": sim.authority_host, "GRAPH_API_ENDPOINT": sim.graph_endpoint,
                    "TENANT_ID": sim.tenant_id, "OUTLOOK_CLIENT_ID": sim.client_id,
                    "OUTLOOK_CLIENT_SECRET": sim.client_secret, "REQUESTS_CA_BUNDLE": sim.ca_bundle}
        sim.mailbox("alice@contoso.com").add_message(folder="inbox", subject="Hi")
        sim.set_faults(latency_ms=50, error_rate=0.05)
        sim.stats()

The client secret never appears in repr() or logs.
"""
from __future__ import annotations

import json
import os
import secrets
from typing import Any

from .app import build_app
from .faults import FaultConfig
from .mailbox import Mailbox
from .server import ServerThread
from .state import SimState, default_ids, parse_mailbox_spec
from .tls import create_tls_material

_MAILBOX_OPTIONS = ("years", "end", "big_attachment_every", "attachment_rate")
_NOT_GIVEN: Any = object()


class GraphSim:
    """A running simulator. Use GraphSim.start(...) (also a context manager); stop() when done."""

    def __init__(self, state: SimState, server: ServerThread, tls, client_id: str, client_secret: str) -> None:
        self._state = state
        self._server = server
        self._tls = tls
        self.port = server.port
        self.url = f"https://127.0.0.1:{self.port}"
        self.authority_host = self.url
        self.graph_endpoint = self.url
        self.ca_bundle = tls.ca_bundle
        self.tenant_id = state.tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.seed = state.seed

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def start(cls, mailboxes: dict[str, int] | str | None = None, seed: int = 0, *, host: str = "127.0.0.1",
              port: int = 0, tenant_id: str | None = None, client_id: str | None = None,
              client_secret: str | None = None, permissions: tuple[str, ...] = ("Mail.Read",),
              tls_dir: str | None = None, **options: Any) -> "GraphSim":
        """Start a simulator.

        mailboxes: {upn: message count} or a spec string "alice@contoso.com=500,bob@contoso.com=20k";
            None serves the demo mailboxes.
        options: mailbox generation (years=3, end=<epoch>, big_attachment_every=200, attachment_rate=0.15)
            and any set_faults() option (latency_ms, concurrency_limit, rate_limit, error_rate, ...).
        """
        mailbox_options = {k: options.pop(k) for k in list(options) if k in _MAILBOX_OPTIONS}
        faults = FaultConfig()
        faults.update(**options)
        default_tenant, default_client = default_ids(seed)
        state = SimState(seed, tenant_id or default_tenant, mailbox_options=mailbox_options, faults=faults)
        client_id = (client_id or default_client).lower()
        client_secret = client_secret or secrets.token_urlsafe(30)
        state.directory.register_app(state.tenant_id, client_id, client_secret, permissions=permissions)
        for upn, count in parse_mailbox_spec(mailboxes).items():
            state.add_mailbox(upn, count)
        tls = create_tls_material(tls_dir)
        try:
            server = ServerThread(build_app(state), tls.server_context, host, port).start()
        except BaseException:
            tls.cleanup()
            raise
        return cls(state, server, tls, client_id, client_secret)

    def stop(self) -> None:
        self._server.stop()
        self._tls.cleanup()

    def __enter__(self) -> "GraphSim":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<GraphSim {self.url} tenant={self.tenant_id} client={self.client_id}>"

    # ------------------------------------------------------------------ directory

    def register_app(self, tenant_id: str, client_id: str, secret: str | None = None,
                     certificate_pem: str | bytes | None = None,
                     permissions: tuple[str, ...] | list[str] = ("Mail.Read",)) -> None:
        """Register (or replace) an app; tenants are created on first use."""
        self._state.directory.register_app(tenant_id, client_id, secret, certificate_pem, permissions)

    def deny(self, client_id: str, upn: str) -> None:
        """Make Graph answer 403 ErrorAccessDenied to this app for this mailbox."""
        self._state.directory.deny(client_id, upn)

    def allow(self, client_id: str, upn: str) -> None:
        self._state.directory.allow(client_id, upn)

    def add_user_without_mailbox(self, upn: str) -> None:
        """A user that exists but has no Exchange Online mailbox (404 MailboxNotEnabledForRESTAPI)."""
        self._state.add_user_without_mailbox(upn)

    # ------------------------------------------------------------------ mailboxes

    def mailbox(self, upn: str) -> Mailbox:
        """The mailbox (by UPN or user id): truth (.folders(), .messages()) and mutations."""
        return self._state.mailbox(upn)

    def add_mailbox(self, upn: str, count: int, tenant_id: str | None = None, **options: Any) -> Mailbox:
        return self._state.add_mailbox(upn, count, tenant_id, **options)

    def mailboxes(self) -> list[str]:
        return [m.upn for m in self._state.mailboxes()]

    def expire_delta_tokens(self, upn: str | None = None) -> None:
        """Make every delta/skip token issued so far (for one mailbox or all) answer 410 resyncRequired."""
        self._state.expire_delta_tokens(upn)

    # ------------------------------------------------------------------ faults and stats

    def set_faults(self, latency_ms: float = _NOT_GIVEN, concurrency_limit: int | None = _NOT_GIVEN,
                   rate_limit: tuple[int, float] | None = _NOT_GIVEN, error_rate: float = _NOT_GIVEN,
                   reset_rate: float = _NOT_GIVEN, delta_token_ttl_s: float | None = _NOT_GIVEN,
                   token_lifetime_s: int = _NOT_GIVEN, **more: Any) -> dict:
        """Change the given options only (others keep their values); returns the whole configuration.

        Options: latency_ms, latency_per_item_ms, concurrency_limit (None = unlimited),
        concurrency_retry_after_s, rate_limit=(requests, per_seconds) or None, error_rate, reset_rate,
        delta_token_ttl_s (None = never expire), token_lifetime_s.
        """
        given = {k: v for k, v in dict(latency_ms=latency_ms, concurrency_limit=concurrency_limit,
                                       rate_limit=rate_limit, error_rate=error_rate, reset_rate=reset_rate,
                                       delta_token_ttl_s=delta_token_ttl_s,
                                       token_lifetime_s=token_lifetime_s).items() if v is not _NOT_GIVEN}
        self._state.faults.config.update(**given, **more)
        return self.faults()

    def reset_faults(self) -> dict:
        """Back to defaults (no latency, concurrency 4, no rate limit, no errors) and fresh counters."""
        self._state.faults.config.update(**FaultConfig().__dict__)
        self._state.faults.reset_counters()
        return self.faults()

    def faults(self) -> dict:
        return self._state.faults.config.as_dict()

    def stats(self) -> dict:
        return self._state.stats.snapshot()

    def reset_stats(self) -> None:
        self._state.stats.reset()

    # ------------------------------------------------------------------ conveniences for tests

    def credentials(self) -> dict:
        """Everything a client needs, as the settings names of the project (secret included)."""
        return {"tenant_id": self.tenant_id, "client_id": self.client_id, "client_secret": self.client_secret,
                "authority_host": self.authority_host, "graph_endpoint": self.graph_endpoint,
                "ca_bundle": self.ca_bundle}

    def write_credentials(self, path: str) -> None:
        """Write credentials() as JSON to a file only the current user can read (atomically replaced)."""
        partial = f"{path}.partial"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.credentials(), f, indent=2)
        os.replace(partial, path)

    def access_token(self, client_id: str | None = None, secret: str | None = None,
                     tenant_id: str | None = None) -> str:
        """A token for the default app (or the given one), obtained over HTTPS like a client would."""
        import requests
        tenant = tenant_id or self.tenant_id
        response = requests.post(
            f"{self.authority_host}/{tenant}/oauth2/v2.0/token",
            data={"grant_type": "client_credentials", "client_id": client_id or self.client_id,
                  "client_secret": secret or self.client_secret, "scope": f"{self.graph_endpoint}/.default"},
            verify=self.ca_bundle, timeout=30)
        response.raise_for_status()
        return response.json()["access_token"]

    def session(self, token: str | None = None):
        """A requests.Session trusting the test CA and sending a bearer token for the default app.

        trust_env is off: otherwise a REQUESTS_CA_BUNDLE in the environment would silently win over
        session.verify (a requests pitfall) and the test CA would not be trusted.
        """
        import requests
        s = requests.Session()
        s.trust_env = False
        s.verify = self.ca_bundle
        s.headers["Authorization"] = f"Bearer {token or self.access_token()}"
        return s
