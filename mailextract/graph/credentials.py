"""App credentials for the client-credentials flow, and where they come from.

Why: a request may bring its own app registration (``config.tenant_id``,
``config.outlook_client_id``, ``config.outlook_client_secret``); any field it leaves out falls
back to the settings ``TENANT_ID``, ``OUTLOOK_CLIENT_ID``, ``OUTLOOK_CLIENT_SECRET``. The secret
is kept out of ``repr``/``str`` so it cannot leak through logs, tracebacks or orchestration
payloads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Mapping

from mailextract.errors import InvalidRequest, MissingCredentials
from mailextract.settings import Settings

# request config field -> Settings field it falls back to
_FALLBACKS = (
    ("tenant_id", "tenant_id"),
    ("outlook_client_id", "outlook_client_id"),
    ("outlook_client_secret", "outlook_client_secret"),
)


@dataclass(frozen=True, repr=False)
class GraphCredentials:
    """Tenant + app id + either a secret or a certificate (PEM private key + thumbprint)."""

    tenant_id: str
    client_id: str
    client_secret: str | None = field(default=None, compare=False)
    certificate_pem: str | None = field(default=None, compare=False)
    certificate_thumbprint: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.tenant_id or not self.client_id:
            raise InvalidRequest("credentials need a tenant id and a client id")
        has_cert = bool(self.certificate_pem and self.certificate_thumbprint)
        if not self.client_secret and not has_cert:
            raise InvalidRequest("credentials need a client secret or a certificate PEM and thumbprint")
        if bool(self.certificate_pem) != bool(self.certificate_thumbprint):
            raise InvalidRequest("a certificate needs both the PEM and the thumbprint")

    @property
    def kind(self) -> str:
        return "secret" if self.client_secret else "certificate"

    def msal_credential(self) -> str | dict[str, str]:
        """What MSAL's ``client_credential`` expects (graph-mail.md "MSAL")."""
        if self.client_secret:
            return self.client_secret
        return {"private_key": self.certificate_pem or "", "thumbprint": self.certificate_thumbprint or ""}

    def fingerprint(self) -> str:
        """A one-way digest of the secret material, to key caches without holding it in keys."""
        material = self.client_secret or f"{self.certificate_thumbprint}\n{self.certificate_pem}"
        return hashlib.sha256(material.encode("utf-8")).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"GraphCredentials(tenant_id={self.tenant_id!r}, client_id={self.client_id!r}, auth={self.kind!r})"

    __str__ = __repr__

    @classmethod
    def resolve(cls, config: Any, settings: Settings) -> "GraphCredentials":
        """Credentials from a request ``config`` (object or mapping), falling back to settings.

        Raises ``MissingCredentials`` naming every field neither side provides.
        """
        values: dict[str, str | None] = {}
        missing: list[str] = []
        for config_name, settings_name in _FALLBACKS:
            value = _read(config, config_name) or getattr(settings, settings_name)
            values[config_name] = value
        cert_pem = _read(config, "outlook_client_certificate_pem")
        cert_thumbprint = _read(config, "outlook_client_certificate_thumbprint")
        has_cert = bool(cert_pem and cert_thumbprint)
        for config_name, _ in _FALLBACKS:
            if config_name == "outlook_client_secret" and has_cert:
                continue
            if not values[config_name]:
                missing.append(config_name)
        if missing:
            by_field = dict(_FALLBACKS)
            raise MissingCredentials(missing, [Settings.setting_name(by_field[m]) for m in missing])
        return cls(
            tenant_id=values["tenant_id"] or "",
            client_id=values["outlook_client_id"] or "",
            client_secret=None if has_cert else values["outlook_client_secret"],
            certificate_pem=cert_pem if has_cert else None,
            certificate_thumbprint=cert_thumbprint if has_cert else None,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> "GraphCredentials":
        return cls.resolve(None, settings)


# Longest accepted request values: secrets and certificates are encrypted into one table property.
MAX_LENGTHS = {"tenant_id": 256, "outlook_client_id": 256, "outlook_client_secret": 1024,
               "outlook_client_certificate_pem": 16384, "outlook_client_certificate_thumbprint": 128}


def _read(config: Any, name: str) -> str | None:
    """A non-blank string field of a config object or mapping, else None."""
    if config is None:
        return None
    value = config.get(name) if isinstance(config, Mapping) else getattr(config, name, None)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string", field=name)
    value = value.strip()
    if len(value) > MAX_LENGTHS.get(name, 1024):
        raise InvalidRequest(f"{name} must be at most {MAX_LENGTHS.get(name, 1024)} characters", field=name)
    return value or None
