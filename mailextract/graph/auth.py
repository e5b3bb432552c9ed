"""Access tokens for Graph through MSAL's client-credentials flow.

Why: MSAL caches app tokens until shortly before they expire (reference/graph-mail.md "MSAL"),
so one ``ConfidentialClientApplication`` per (authority, tenant, client, credential) per process
means one token request per app per hour instead of one per call. On top of MSAL the provider
keeps the current token until 10% of its lifetime (at most 5 minutes, MSAL's own margin) is left:
with Entra's hour-long tokens that is exactly MSAL's behaviour, and with short-lived tokens (a
simulator) it still means one token request per lifetime rather than one per call, which MSAL's
fixed 5-minute margin would cause. Graph may still reject a token early (revoked, clock skew):
``refresh(rejected)`` drops it from MSAL's cache and fetches a new one, once for all threads that
saw the same rejected token.

Bad credentials raise ``AuthenticationFailed`` at once; only an unreachable or failing token
endpoint raises ``TokenEndpointUnavailable``, which the transport retries within its budget.
TLS trust comes from ``REQUESTS_CA_BUNDLE`` (MSAL talks through ``requests``; the environment
variable wins over a session's ``verify``), so nothing here sets CA paths.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any, Callable, Protocol
from urllib.parse import urlsplit

from mailextract.errors import AuthenticationFailed, GraphUnavailable
from mailextract.graph.credentials import GraphCredentials

log = logging.getLogger(__name__)

# Login hosts MSAL knows (reference/graph-mail.md "National clouds"); any other host (graphsim)
# needs instance_discovery=False or MSAL asks login.microsoftonline.com about it.
MICROSOFT_LOGIN_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "sts.windows.net",
        "login.microsoftonline.us",
        "login-us.microsoftonline.com",
        "login.usgovcloudapi.net",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
    }
)

# OAuth errors that mean "the identity provider is having trouble", not "your credentials are bad".
RENEW_MARGIN_MAX_SECONDS = 300.0  # MSAL's own margin for app tokens
_TRANSIENT_OAUTH_ERRORS = frozenset({"temporarily_unavailable", "server_error"})
_AADSTS = re.compile(r"AADSTS(\d+)")


class TokenProvider(Protocol):
    """Port used by the transport; fakes implement it in unit tests."""

    def get_token(self) -> str: ...

    def refresh(self, rejected: str) -> str: ...


class TokenEndpointUnavailable(GraphUnavailable):
    """The token endpoint could not be reached or answered 5xx (retryable by the transport)."""


def uses_instance_discovery(authority_host: str) -> bool:
    return (urlsplit(authority_host).hostname or "").lower() in MICROSOFT_LOGIN_HOSTS


class MsalTokenProvider:
    """Tokens for one app registration and one scope, via a lazily built MSAL app."""

    def __init__(self, credentials: GraphCredentials, authority_host: str, scope: str, *, timeout: float = 30.0,
                 app_factory: Callable[[], Any] | None = None, monotonic: Callable[[], float] = time.monotonic):
        self.credentials = credentials
        self.authority = f"{authority_host.rstrip('/')}/{credentials.tenant_id}"
        self.scope = scope
        self.timeout = timeout
        self._instance_discovery = None if uses_instance_discovery(authority_host) else False
        self._app: Any = None
        self._app_factory = app_factory or self._msal_app
        self._current: str | None = None
        self._renew_at = 0.0  # monotonic time after which _current is no longer handed out
        self._monotonic = monotonic
        self._lock = threading.Lock()  # one token request at a time per app: no stampede on expiry

    def get_token(self) -> str:
        with self._lock:
            if self._current is not None and self._monotonic() < self._renew_at:
                return self._current
            return self._acquire_locked()

    def refresh(self, rejected: str) -> str:
        """Replace a token Graph rejected; threads holding the same stale token share one refresh."""
        with self._lock:
            if self._current is not None and self._current != rejected and self._monotonic() < self._renew_at:
                return self._current  # another thread already replaced the rejected token
            app = self._app_locked()
            app.remove_tokens_for_client()  # else MSAL would hand back the same cached token
            self._current = None
            log.info("graph token rejected; requesting a new one for client %s tenant %s",
                     self.credentials.client_id, self.credentials.tenant_id)
            return self._acquire_locked()

    # ---------------------------------------------------------------------------------
    def _app_locked(self) -> Any:
        if self._app is None:
            import requests

            try:
                self._app = self._app_factory()
            except requests.RequestException as exc:
                raise self._unavailable(f"authority discovery failed: {type(exc).__name__}") from None
            except ValueError as exc:
                # MSAL raises ValueError when OIDC discovery answers 4xx (unknown tenant) or the
                # private key cannot be parsed: both are credential problems, not outages.
                text = str(exc)
                if "authority configuration" in text or "OIDC Discovery" in text:
                    error, description = "invalid_tenant", (
                        f"tenant {self.credentials.tenant_id} is unknown to {self.authority.rsplit('/', 1)[0]} "
                        "(its OpenID configuration could not be read)")
                else:
                    error, description = "invalid_credential", _first_line(text)
                raise AuthenticationFailed(
                    description,
                    error=error,
                    aadsts_code=_aadsts(text, None),
                    tenant_id=self.credentials.tenant_id,
                    client_id=self.credentials.client_id,
                ) from None
            except Exception as exc:
                # MSAL answers a 5xx discovery with MsalServiceError or RuntimeError: an outage.
                if isinstance(exc, RuntimeError) or type(exc).__module__.startswith("msal"):
                    raise self._unavailable(
                        f"authority discovery failed: {type(exc).__name__}: {_first_line(str(exc))}") from None
                raise
        return self._app

    def _msal_app(self) -> Any:
        import msal  # lazy: nothing connects or imports heavy modules at import time

        # Building the app fetches {authority}/v2.0/.well-known/openid-configuration.
        return msal.ConfidentialClientApplication(
            self.credentials.client_id,
            client_credential=self.credentials.msal_credential(),
            authority=self.authority,
            instance_discovery=self._instance_discovery,
            timeout=self.timeout,
        )

    def _acquire_locked(self) -> str:
        import requests

        app = self._app_locked()
        try:
            result = app.acquire_token_for_client(scopes=[self.scope])
        except requests.RequestException as exc:
            raise self._unavailable(f"token request failed: {type(exc).__name__}") from None
        if not isinstance(result, dict):
            raise self._unavailable("token endpoint returned no result")
        token = result.get("access_token")
        if token:
            try:
                expires_in = max(0.0, float(result.get("expires_in") or 0))
            except (TypeError, ValueError):
                expires_in = 0.0
            if result.get("token_source") == "identity_provider":
                log.info("graph token acquired for client %s tenant %s (expires in %ss)",
                         self.credentials.client_id, self.credentials.tenant_id, result.get("expires_in"))
            self._current = token
            self._renew_at = self._monotonic() + expires_in - min(RENEW_MARGIN_MAX_SECONDS, 0.1 * expires_in)
            return token
        error = str(result.get("error") or "")
        description = str(result.get("error_description") or "")
        if error in _TRANSIENT_OAUTH_ERRORS:
            raise self._unavailable(f"token endpoint error {error}: {_first_line(description)}")
        log.warning("graph token refused for client %s tenant %s: %s",
                    self.credentials.client_id, self.credentials.tenant_id, error)
        raise AuthenticationFailed(
            _first_line(description),
            error=error or None,
            aadsts_code=_aadsts(description, result.get("error_codes")),
            tenant_id=self.credentials.tenant_id,
            client_id=self.credentials.client_id,
        )

    def _unavailable(self, reason: str) -> TokenEndpointUnavailable:
        return TokenEndpointUnavailable(
            mailbox=None, call=f"POST {urlsplit(self.authority).path}/oauth2/v2.0/token", reason=reason,
            attempts=1, waited_seconds=0.0,
        )


def _aadsts(description: str, error_codes: Any) -> str | None:
    if isinstance(error_codes, list) and error_codes:
        return f"AADSTS{error_codes[0]}"
    match = _AADSTS.search(description or "")
    return f"AADSTS{match.group(1)}" if match else None


def _first_line(text: str) -> str:
    """Entra descriptions end with trace/correlation ids and a timestamp; keep the message."""
    text = (text or "").strip()
    text = text.splitlines()[0] if text else ""
    return text.split(" Trace ID:", 1)[0].strip()


_providers: dict[tuple[str, str, str, str], MsalTokenProvider] = {}
_providers_lock = threading.Lock()


def token_provider_for(credentials: GraphCredentials, authority_host: str, scope: str) -> MsalTokenProvider:
    """The process-wide provider for these credentials (MSAL app and token cache reused)."""
    key = (f"{authority_host.rstrip('/')}/{credentials.tenant_id}".lower(), credentials.client_id,
           credentials.fingerprint(), scope)
    with _providers_lock:
        provider = _providers.get(key)
        if provider is None:
            provider = _providers[key] = MsalTokenProvider(credentials, authority_host, scope)
        return provider
