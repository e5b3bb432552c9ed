"""Entra ID (Azure AD) for graphsim: tenants, app registrations, the client-credentials token flow.

Why: production code obtains tokens with MSAL (`ConfidentialClientApplication(...,
authority=f"{AZURE_AUTHORITY_HOST}/{tenant}").acquire_token_for_client(...)`), so the simulator
serves what MSAL reads (the v2.0 openid-configuration and the token endpoint) and answers failures
with Entra's error shape (AADSTS codes, trace and correlation ids), so that misconfiguration
(wrong secret, unknown app, unknown tenant) is diagnosed in tests the way it is in Azure.

Client credentials are a secret, or a certificate: MSAL's `client_assertion` JWT (RS256 with
`x5t`, or PS256 with `x5t#S256`) is verified against the certificate registered for the app.
Access tokens are opaque (AES-GCM sealed, JWT-looking) and map back to tenant, app, roles, expiry.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlparse

from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAIL_READ_ROLES = frozenset({"Mail.Read", "Mail.ReadWrite"})


@dataclass
class Certificate:
    sha1: bytes
    sha256: bytes
    public_key: object


@dataclass
class App:
    tenant_id: str
    client_id: str
    secret_digest: bytes | None
    certificates: list[Certificate]
    permissions: frozenset[str]
    display_name: str = "graphsim app"


@dataclass
class Tenant:
    tenant_id: str
    domains: set[str] = field(default_factory=set)


@dataclass
class TokenInfo:
    tenant_id: str
    client_id: str
    roles: frozenset[str]
    expires_at: float
    audience: str


class TokenError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _digest_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def load_certificate(pem: str | bytes) -> Certificate:
    cert = x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
    return Certificate(sha1=cert.fingerprint(hashes.SHA1()), sha256=cert.fingerprint(hashes.SHA256()),
                       public_key=cert.public_key())


class Directory:
    """Tenants, app registrations and per-mailbox denials; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.tenants: dict[str, Tenant] = {}
        self.apps: dict[tuple[str, str], App] = {}
        self.denied: set[tuple[str, str]] = set()

    def add_tenant(self, tenant_id: str, domains: set[str] | None = None) -> Tenant:
        with self._lock:
            tenant = self.tenants.setdefault(tenant_id.lower(), Tenant(tenant_id.lower()))
            tenant.domains |= {d.lower() for d in (domains or set())}
            return tenant

    def find_tenant(self, name: str) -> Tenant | None:
        name = name.lower()
        with self._lock:
            if name in self.tenants:
                return self.tenants[name]
            return next((t for t in self.tenants.values() if name in t.domains), None)

    def register_app(self, tenant_id: str, client_id: str, secret: str | None = None,
                     certificate_pem: str | bytes | None = None,
                     permissions: tuple[str, ...] | list[str] = ("Mail.Read",)) -> App:
        if secret is None and certificate_pem is None:
            raise ValueError("an app needs a secret or a certificate")
        self.add_tenant(tenant_id)
        certs = [load_certificate(certificate_pem)] if certificate_pem else []
        app = App(tenant_id.lower(), client_id.lower(), _digest_secret(secret) if secret else None, certs,
                  frozenset(permissions))
        with self._lock:
            self.apps[(app.tenant_id, app.client_id)] = app
        return app

    def find_app(self, tenant_id: str, client_id: str) -> App | None:
        with self._lock:
            return self.apps.get((tenant_id.lower(), client_id.lower()))

    def deny(self, client_id: str, upn: str) -> None:
        with self._lock:
            self.denied.add((client_id.lower(), upn.lower()))

    def allow(self, client_id: str, upn: str) -> None:
        with self._lock:
            self.denied.discard((client_id.lower(), upn.lower()))

    def is_denied(self, client_id: str, upn: str) -> bool:
        with self._lock:
            return (client_id.lower(), upn.lower()) in self.denied


class TokenIssuer:
    """Seals and opens access tokens with a per-simulator key (tokens die with the simulator)."""

    _HEADER = _b64url(json.dumps({"typ": "JWT", "alg": "dir", "enc": "A256GCM", "kid": "graphsim"}).encode())

    def __init__(self) -> None:
        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))

    def issue(self, app: App, audience: str, lifetime_s: float) -> tuple[str, float]:
        now = time.time()
        claims = {"tid": app.tenant_id, "appid": app.client_id, "roles": sorted(app.permissions),
                  "aud": audience, "iat": int(now), "exp": now + lifetime_s, "uti": uuid.uuid4().hex}
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, json.dumps(claims).encode(), self._HEADER.encode())
        return f"{self._HEADER}.{_b64url(nonce)}.{_b64url(sealed)}", claims["exp"]

    def open(self, token: str) -> TokenInfo:
        """Decode a bearer token; raises TokenError with Graph's message for bad or expired tokens."""
        if not token:
            raise TokenError("Access token is empty.")
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("IDX14100: JWT is not well formed, there are no dots (.).\nThe token needs to be in "
                             "JWS or JWE Compact Serialization Format.")
        try:
            claims = json.loads(self._aead.decrypt(_b64url_decode(parts[1]), _b64url_decode(parts[2]),
                                                   parts[0].encode()))
        except Exception:
            raise TokenError("Invalid JWT token. The token is malformed or was not issued by this service.")
        if claims["exp"] <= time.time():
            raise TokenError("Lifetime validation failed, the token is expired.")
        return TokenInfo(claims["tid"], claims["appid"], frozenset(claims["roles"]), claims["exp"], claims["aud"])


# ---------------------------------------------------------------------------------- HTTP handlers

def _entra_error(request: web.Request, status: int, error: str, code: int, text: str) -> web.Response:
    trace_id = str(uuid.uuid4())
    correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
    stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    body = {
        "error": error,
        "error_description": f"AADSTS{code}: {text} Trace ID: {trace_id} Correlation ID: {correlation_id} "
                             f"Timestamp: {stamp}",
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://{request.host}/error?code={code}",
    }
    return web.json_response(body, status=status, headers={"Cache-Control": "no-store, no-cache"})


def _tenant_not_found(request: web.Request, tenant: str, status_error: str = "invalid_request") -> web.Response:
    return _entra_error(request, 400, status_error, 90002,
                        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
                        "signing into the correct cloud. Check with your subscription administrator, this may "
                        "happen if there are no active subscriptions for the tenant.")


def openid_configuration(sim, request: web.Request) -> web.Response:
    name = request.match_info["tenant"]
    tenant = sim.directory.find_tenant(name)
    if tenant is None:
        return _tenant_not_found(request, name, "invalid_tenant")
    base = f"https://{request.host}"
    t = tenant.tenant_id
    doc = {
        "token_endpoint": f"{base}/{t}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{base}/{t}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/{t}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{base}/oidc/userinfo",
        "authorization_endpoint": f"{base}/{t}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/{t}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/{t}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "tid", "ver"],
        "kerberos_endpoint": f"{base}/{t}/kerberos",
        "tenant_region_scope": "EU",
        "cloud_instance_name": "graphsim.invalid",
        "cloud_graph_host_name": request.host,
        "msgraph_host": request.host,
        "rbac_url": f"{base}/rbac",
    }
    return web.json_response(doc)


def jwks(sim, request: web.Request) -> web.Response:
    # Access tokens are opaque and validated by the simulator itself: no signing keys to publish.
    return web.json_response({"keys": []})


def not_supported(sim, request: web.Request) -> web.Response:
    return _entra_error(request, 400, "unsupported_response_type", 70000,
                        "graphsim supports only the client credentials grant.")


def _check_assertion(assertion: str, app: App, request: web.Request) -> str | None:
    """None if the client assertion is valid for this app, else the AADSTS700027 text."""
    try:
        head_b64, payload_b64, sig_b64 = assertion.split(".")
        header = json.loads(_b64url_decode(head_b64))
        claims = json.loads(_b64url_decode(payload_b64))
        signature = _b64url_decode(sig_b64)
    except Exception:
        return "Client assertion failed signature validation. The assertion is not a well-formed JWT."
    cert = None
    if "x5t#S256" in header:
        want = _b64url_decode(header["x5t#S256"])
        cert = next((c for c in app.certificates if c.sha256 == want), None)
    elif "x5t" in header:
        want = _b64url_decode(header["x5t"])
        cert = next((c for c in app.certificates if c.sha1 == want), None)
    if cert is None:
        return ("The certificate with identifier used to sign the client assertion is not registered on "
                f"application. [Reason - The key was not found., Thumbprint of key used by client: "
                f"'{header.get('x5t#S256') or header.get('x5t')}']")
    signed = f"{head_b64}.{payload_b64}".encode()
    alg = header.get("alg")
    try:
        key = cert.public_key
        if alg == "RS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "PS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                      salt_length=padding.PSS.AUTO), hashes.SHA256())
        elif alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
            from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            key.verify(encode_dss_signature(r, s), signed, ec.ECDSA(hashes.SHA256()))
        else:
            return f"Client assertion failed signature validation. Unsupported algorithm '{alg}'."
    except InvalidSignature:
        return "Client assertion failed signature validation."
    now = time.time()
    if claims.get("iss", "").lower() != app.client_id or claims.get("sub", "").lower() != app.client_id:
        return "Client assertion contains an invalid issuer or subject: both must be the client id."
    aud = urlparse(str(claims.get("aud", "")))
    if aud.path.rstrip("/").lower() != request.path.rstrip("/").lower() or aud.port != request.url.port:
        return f"Client assertion audience claim does not match the token endpoint. Audience: '{claims.get('aud')}'."
    if float(claims.get("exp", 0)) < now - 300 or float(claims.get("nbf", 0)) > now + 300:
        return "Client assertion is not within its valid time range."
    return None


async def token_endpoint(sim, request: web.Request) -> web.Response:
    sim.stats.bump("token_requests")
    form = await request.post()
    name = request.match_info["tenant"]
    tenant = sim.directory.find_tenant(name)
    if tenant is None:
        return _tenant_not_found(request, name)
    grant = form.get("grant_type")
    if grant != "client_credentials":
        return _entra_error(request, 400, "unsupported_grant_type", 70003,
                            f"The app requested an unsupported grant type '{grant}'. graphsim supports "
                            "client_credentials only.")
    client_id = str(form.get("client_id") or "")
    auth = request.headers.get("Authorization", "")
    secret = form.get("client_secret")
    if not client_id and auth.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        except Exception:
            pass
    if not client_id:
        return _entra_error(request, 400, "invalid_request", 900144,
                            "The request body must contain the following parameter: 'client_id'.")
    app = sim.directory.find_app(tenant.tenant_id, client_id)
    if app is None:
        return _entra_error(request, 400, "unauthorized_client", 700016,
                            f"Application with identifier '{client_id}' was not found in the directory "
                            f"'{tenant.tenant_id}'. This can happen if the application has not been installed by "
                            "the administrator of the tenant or consented to by any user in the tenant. You may "
                            "have sent your authentication request to the wrong tenant.")
    assertion = form.get("client_assertion")
    if assertion is not None:
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            return _entra_error(request, 400, "invalid_request", 50027,
                                "Invalid client_assertion_type: expected "
                                f"'{CLIENT_ASSERTION_TYPE}'.")
        problem = _check_assertion(str(assertion), app, request)
        if problem:
            return _entra_error(request, 401, "invalid_client", 700027, problem)
    elif secret is not None:
        if app.secret_digest is None or not hmac.compare_digest(_digest_secret(str(secret)), app.secret_digest):
            return _entra_error(request, 401, "invalid_client", 7000215,
                                "Invalid client secret provided. Ensure the secret being sent in the request is the "
                                "client secret value, not the client secret ID, for a secret added to app "
                                f"'{app.client_id}'.")
    else:
        return _entra_error(request, 401, "invalid_client", 7000218,
                            "The request body must contain the following parameter: 'client_assertion' or "
                            "'client_secret'.")
    scope = str(form.get("scope") or "")
    if not scope:
        return _entra_error(request, 400, "invalid_request", 900144,
                            "The request body must contain the following parameter: 'scope'.")
    resources = [s for s in scope.split() if s.lower() not in ("openid", "profile", "offline_access")]
    if len(resources) != 1 or not resources[0].endswith("/.default"):
        return _entra_error(request, 400, "invalid_scope", 1002012,
                            f"The provided value for scope {scope} is not valid. Client credential flows must have "
                            "a scope value with /.default suffixed to the resource identifier (application ID URI).")
    resource = resources[0][: -len("/.default")]
    parsed = urlparse(resource)
    if parsed.scheme != "https" or parsed.hostname not in ("127.0.0.1", "localhost") or parsed.port != request.url.port:
        return _entra_error(request, 400, "invalid_resource", 500011,
                            f"The resource principal named {resource} was not found in the tenant named "
                            f"{tenant.tenant_id}. This can happen if the application has not been installed by the "
                            "administrator of the tenant or consented to by any user in the tenant. You might have "
                            "sent your authentication request to the wrong tenant.")
    lifetime = int(sim.faults.config.token_lifetime_s)
    token, _ = sim.tokens.issue(app, resource, lifetime)
    sim.stats.bump("tokens_issued")
    return web.json_response(
        {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token},
        headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})
