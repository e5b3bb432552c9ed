"""Entra side of graphsim: MSAL's client-credentials flow works against it, and failures look like Entra's."""
from __future__ import annotations

import datetime
import time

import msal
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .helpers import graph_error, users_url

ENTRA_ERROR_KEYS = {"error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id",
                    "error_uri"}


def _token_request(sim, tenant=None, **form):
    data = {"grant_type": "client_credentials", "client_id": sim.client_id, "client_secret": sim.client_secret,
            "scope": f"{sim.graph_endpoint}/.default", **form}
    data = {k: v for k, v in data.items() if v is not None}
    return requests.post(f"{sim.authority_host}/{tenant or sim.tenant_id}/oauth2/v2.0/token", data=data, verify=sim.ca_bundle,
                         timeout=10)


def _msal_app(sim, credential, client_id=None, tenant=None):
    return msal.ConfidentialClientApplication(client_id or sim.client_id, client_credential=credential,
                                              authority=f"{sim.authority_host}/{tenant or sim.tenant_id}",
                                              instance_discovery=False)


def test_msal_gets_a_token_that_graph_accepts_and_caches_it(graphsim, graphsim_env):
    app = _msal_app(graphsim, graphsim.client_secret)
    first = app.acquire_token_for_client(scopes=[f"{graphsim.graph_endpoint}/.default"])
    assert first["token_type"] == "Bearer"
    assert first["expires_in"] == 3600
    assert first["token_source"] == "identity_provider"
    second = app.acquire_token_for_client(scopes=[f"{graphsim.graph_endpoint}/.default"])
    assert second["token_source"] == "cache"
    assert second["access_token"] == first["access_token"]
    assert graphsim.stats()["token_requests"] == 1

    response = requests.get(f"{users_url(graphsim, 'alice@contoso.com')}/mailFolders",
                            headers={"Authorization": f"Bearer {first['access_token']}"})
    assert response.status_code == 200
    assert graphsim.client_secret not in response.text


def test_openid_configuration_names_the_simulator_itself(graphsim):
    doc = requests.get(f"{graphsim.authority_host}/{graphsim.tenant_id}/v2.0/.well-known/openid-configuration",
                       verify=graphsim.ca_bundle).json()
    prefix = f"{graphsim.authority_host}/{graphsim.tenant_id}"
    assert doc["token_endpoint"] == f"{prefix}/oauth2/v2.0/token"
    assert doc["authorization_endpoint"] == f"{prefix}/oauth2/v2.0/authorize"
    assert doc["issuer"] == f"{prefix}/v2.0"
    assert doc["jwks_uri"] == f"{prefix}/discovery/v2.0/keys"
    assert requests.get(doc["jwks_uri"], verify=graphsim.ca_bundle).json() == {"keys": []}


def test_wrong_secret_is_rejected_with_entras_error_shape(graphsim, graphsim_env):
    response = _token_request(graphsim, client_secret="not-the-secret")
    assert response.status_code == 401
    body = response.json()
    assert set(body) == ENTRA_ERROR_KEYS
    assert body["error"] == "invalid_client"
    assert body["error_codes"] == [7000215]
    assert body["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    assert f"Trace ID: {body['trace_id']}" in body["error_description"]
    assert "not-the-secret" not in response.text and graphsim.client_secret not in response.text

    result = _msal_app(graphsim, "not-the-secret").acquire_token_for_client(
        scopes=[f"{graphsim.graph_endpoint}/.default"])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]


def test_unknown_app_and_unknown_tenant(graphsim, graphsim_env):
    response = _token_request(graphsim, client_id="11111111-2222-3333-4444-555555555555")
    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["error_codes"]) == ("unauthorized_client", [700016])
    assert body["error_description"].startswith(
        "AADSTS700016: Application with identifier '11111111-2222-3333-4444-555555555555' was not found in the "
        f"directory '{graphsim.tenant_id}'.")

    response = _token_request(graphsim, tenant="00000000-0000-0000-0000-000000000000")
    assert response.status_code == 400
    body = response.json()
    assert set(body) == ENTRA_ERROR_KEYS
    assert (body["error"], body["error_codes"]) == ("invalid_request", [90002])
    assert body["error_description"].startswith("AADSTS90002: Tenant '00000000-0000-0000-0000-000000000000' not found.")

    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        _msal_app(graphsim, graphsim.client_secret, tenant="00000000-0000-0000-0000-000000000000")


def test_tenant_can_be_named_by_its_domain(graphsim, graphsim_env):
    result = _msal_app(graphsim, graphsim.client_secret, tenant="contoso.com").acquire_token_for_client(
        scopes=[f"{graphsim.graph_endpoint}/.default"])
    assert "access_token" in result, result


def test_scope_must_be_this_graph_with_default_suffix(graphsim):
    response = _token_request(graphsim, scope="https://graph.microsoft.com/.default")
    assert response.status_code == 400
    assert (response.json()["error"], response.json()["error_codes"]) == ("invalid_resource", [500011])
    response = _token_request(graphsim, scope=f"{graphsim.graph_endpoint}/Mail.Read")
    assert (response.json()["error"], response.json()["error_codes"]) == ("invalid_scope", [1002012])


def test_tokens_expire(graphsim):
    graphsim.set_faults(token_lifetime_s=1)
    response = _token_request(graphsim)
    assert response.json()["expires_in"] == 1
    token = response.json()["access_token"]
    url = f"{users_url(graphsim, 'alice@contoso.com')}/mailFolders/inbox"
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, verify=graphsim.ca_bundle).status_code == 200
    time.sleep(1.1)
    response = requests.get(url, headers={"Authorization": f"Bearer {token}"}, verify=graphsim.ca_bundle)
    assert response.status_code == 401
    assert graph_error(response) == ("InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_missing_or_forged_token_is_401(graphsim):
    url = f"{users_url(graphsim, 'alice@contoso.com')}/messages"
    response = requests.get(url, verify=graphsim.ca_bundle)
    assert response.status_code == 401
    assert graph_error(response) == ("InvalidAuthenticationToken", "Access token is empty.")
    response = requests.get(url, headers={"Authorization": "Bearer a.b.c"}, verify=graphsim.ca_bundle)
    assert response.status_code == 401
    assert graph_error(response)[0] == "InvalidAuthenticationToken"


def _certificate():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "graphsim test app")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode(), cert.fingerprint(hashes.SHA1()).hex()


def test_certificate_credentials_are_verified(graphsim, graphsim_env):
    key_pem, cert_pem, sha1 = _certificate()
    other_key, _, other_sha1 = _certificate()
    client_id = "aaaaaaaa-0000-4000-8000-000000000001"
    graphsim.register_app(graphsim.tenant_id, client_id, certificate_pem=cert_pem)
    scopes = [f"{graphsim.graph_endpoint}/.default"]

    rs256 = _msal_app(graphsim, {"private_key": key_pem, "thumbprint": sha1}, client_id).acquire_token_for_client(scopes)
    assert "access_token" in rs256, rs256
    ps256 = _msal_app(graphsim, {"private_key": key_pem, "public_certificate": cert_pem},
                      client_id).acquire_token_for_client(scopes)
    assert "access_token" in ps256, ps256

    unknown = _msal_app(graphsim, {"private_key": other_key, "thumbprint": other_sha1},
                        client_id).acquire_token_for_client(scopes)
    assert (unknown["error"], unknown["error_codes"]) == ("invalid_client", [700027])
    forged = _msal_app(graphsim, {"private_key": other_key, "thumbprint": sha1}, client_id).acquire_token_for_client(scopes)
    assert (forged["error"], forged["error_codes"]) == ("invalid_client", [700027])
    assert "signature validation" in forged["error_description"]
