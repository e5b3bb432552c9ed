"""Typed errors of the core package.

Why: the HTTP layer maps errors to status codes and the orchestrators decide what is worth
retrying, so both need to tell failures apart without parsing messages. Every error has a stable
``code`` (snake_case, part of the public API: it ends up in ``{"error": {"code": ...}}`` bodies)
and a human ``message``. Mapping to HTTP status codes happens only in ``http_triggers/``.

Errors never carry secrets or access tokens: constructors only take the fields listed here, and
Graph error texts are Graph's own (they do not echo credentials).
"""

from __future__ import annotations

from typing import Any, Iterable


class MailExtractionError(Exception):
    """Base of all expected failures of the core package."""

    code: str = "mail_extraction_error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        """The error body shape of the API: ``{"code": ..., "message": ...}``."""
        return {"code": self.code, "message": self.message}

    def __str__(self) -> str:
        return self.message


class SettingsError(MailExtractionError):
    """A setting (environment / app setting) has an invalid value."""

    code = "invalid_setting"

    def __init__(self, setting: str, reason: str):
        super().__init__(f"setting {setting} is invalid: {reason}")
        self.setting = setting
        self.reason = reason


class InvalidRequest(MailExtractionError):
    """The caller asked for something malformed (bad filter value, bad cursor...)."""

    code = "invalid_request"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class EncryptionKeyMissing(MailExtractionError):
    """A request brought its own secret but setting CREDENTIAL_ENCRYPTION_KEY is not set, so it
    cannot be kept encrypted at rest (the credential vault refuses to store it in clear)."""

    code = "encryption_key_missing"

    def __init__(self, message: str = "setting CREDENTIAL_ENCRYPTION_KEY is not set: credentials given in a "
                                      "request cannot be stored encrypted; configure the key or use the app's "
                                      "own settings credentials"):
        super().__init__(message)


class JobConflict(MailExtractionError):
    """The job is in a state that does not allow this action (e.g. resuming a finished run)."""

    code = "job_conflict"

    def __init__(self, message: str, *, status: str | None = None):
        super().__init__(message)
        self.status = status


class JobNotFound(MailExtractionError):
    """No run, batch or message with the id the caller gave."""

    code = "not_found"


class RuntimeUnavailable(MailExtractionError):
    """The Durable Functions runtime did not accept a new orchestration (the run is marked failed)."""

    code = "runtime_unavailable"


class InstanceNotFound(MailExtractionError):
    """The orchestration instance does not exist (yet): e.g. a batch run not started so far."""

    code = "instance_not_found"


class MissingCredentials(MailExtractionError):
    """Neither the request nor the settings provide some credential fields.

    ``missing`` lists the request config field names; the message also names the settings that
    could provide them.
    """

    code = "missing_credentials"

    def __init__(self, missing: Iterable[str], settings_names: Iterable[str | None] = ()):
        self.missing = tuple(missing)
        names = list(settings_names)
        self.settings_names = tuple(names[i] if i < len(names) else None for i in range(len(self.missing)))
        described = [
            f"{field} (or setting {setting})" if setting else field
            for field, setting in zip(self.missing, self.settings_names)
        ]
        super().__init__("missing credentials: " + ", ".join(described))


class AuthenticationFailed(MailExtractionError):
    """Entra ID refused the app credentials (bad secret, unknown client or tenant...).

    Carries the OAuth ``error``, the ``AADSTS`` code and Entra's description; never the secret.
    Not retried: a wrong secret does not become right by asking again.
    """

    code = "authentication_failed"

    def __init__(
        self,
        description: str,
        *,
        error: str | None = None,
        aadsts_code: str | None = None,
        tenant_id: str | None = None,
        client_id: str | None = None,
    ):
        prefix = f"authentication failed for client {client_id} in tenant {tenant_id}"
        detail = ": ".join(part for part in (error, description) if part)
        super().__init__(f"{prefix}: {detail}" if detail else prefix)
        self.error = error
        self.aadsts_code = aadsts_code
        self.description = description
        self.tenant_id = tenant_id
        self.client_id = client_id


class GraphError(MailExtractionError):
    """Graph answered with an error that has no more specific type.

    ``status`` is the HTTP status, ``graph_code``/``graph_message`` come from Graph's error body,
    ``call`` is ``"METHOD /path"`` without the query string.
    """

    code = "graph_error"

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        graph_code: str | None = None,
        graph_message: str | None = None,
        mailbox: str | None = None,
        call: str | None = None,
    ):
        if message is None:
            where = f" on {call}" if call else ""
            who = f" for mailbox {mailbox}" if mailbox else ""
            message = f"Graph answered {status} {graph_code or ''}{where}{who}: {graph_message or ''}".strip()
        super().__init__(message)
        self.status = status
        self.graph_code = graph_code
        self.graph_message = graph_message
        self.mailbox = mailbox
        self.call = call


class MailboxNotFound(GraphError):
    """The mailbox (user) does not exist or has no Exchange Online mailbox."""

    code = "mailbox_not_found"


class AccessDenied(GraphError):
    """The app may not read this mailbox (missing permission, application access policy...)."""

    code = "access_denied"


class DeltaExpired(GraphError):
    """The delta state of a folder expired: that folder must restart from scratch.

    See reference/graph-mail.md "Delta": 410 Gone, syncStateNotFound or resyncRequired.
    """

    code = "delta_expired"

    def __init__(self, message: str | None = None, *, folder_id: str | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.folder_id = folder_id


class _RetriesExhausted(MailExtractionError):
    """Shared shape of the two "we waited as long as allowed" errors."""

    def __init__(
        self,
        *,
        mailbox: str | None,
        call: str,
        reason: str,
        attempts: int,
        waited_seconds: float,
        status: int | None = None,
    ):
        who = f"mailbox {mailbox}" if mailbox else "no mailbox"
        super().__init__(
            f"{call} for {who} gave up after {attempts} attempt(s) and {waited_seconds:.1f}s of waiting: {reason}"
        )
        self.mailbox = mailbox
        self.call = call
        self.reason = reason
        self.attempts = attempts
        self.waited_seconds = waited_seconds
        self.status = status


class Throttled(_RetriesExhausted):
    """Graph kept throttling (429) beyond the bounded total wait (``GRAPH_MAX_TOTAL_WAIT_SECONDS``)."""

    code = "throttled"


class GraphUnavailable(_RetriesExhausted):
    """Graph (or the token endpoint) kept failing with 5xx / connection errors beyond the retry budget."""

    code = "graph_unavailable"


class ConnectionExists(JobConflict):
    """A connection with that id already exists (create refuses to overwrite it)."""

    code = "connection_exists"
